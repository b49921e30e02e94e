"""``python -m pinnsketch`` is the ``pinnsketch`` command."""
from pinnsketch.cli import main

raise SystemExit(main())

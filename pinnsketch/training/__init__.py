"""Training: objective, trainer, schedule, checks, construction from a config, evaluation,
Ctrl-C handling and distributed execution. Writes no files (:mod:`pinnsketch.runner` does)."""

"""The package version (layer 0: imported by the package and by run summaries)."""
__version__ = "0.2.0"

"""hazmon: monitoring daemon for major hazard installations (重大危险源)."""

__version__ = "0.1.0"

"""hazmon.rules."""

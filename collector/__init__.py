"""hazmon.collector."""

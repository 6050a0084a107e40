"""hazmon.simulators."""

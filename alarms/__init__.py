"""hazmon.alarms."""

"""hazmon.grafana."""

-- Plain mode: nothing. readings_1d_counts is the trigger-kept table of 0404_health_day_counts.plain.sql;
-- the TimescaleDB variant makes it a hierarchical continuous aggregate and points the same
-- hazmon_sensor_health at it.
SELECT 1;

-- TimescaleDB mode: nothing. The plain-mode day counts (0404_health_day_counts.plain.sql) are
-- kept by triggers on the readings_1h table; here readings_1h is a continuous aggregate,
-- and hazmon_sensor_health keeps 0403's reading of it.
SELECT 1;

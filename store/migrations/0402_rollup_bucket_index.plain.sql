-- Plain mode: the rollup tables are keyed (sensor_id, bucket), so a time range
-- over all sensors scanned the whole table. Two readers need it by bucket:
-- hazmon_refresh_rollups (the readings_1h step reads readings_1m by bucket, every
-- minute; without this index each refresh read all of readings_1m, 21.6 M rows
-- for 30 days of 500 sensors) and the sensor-health panels (completeness over a
-- range). In TimescaleDB mode the continuous aggregates are indexed on bucket.
CREATE INDEX readings_1m_bucket ON readings_1m (bucket);
CREATE INDEX readings_1h_bucket ON readings_1h (bucket);

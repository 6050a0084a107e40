-- TimescaleDB mode: nothing to do here. The continuous aggregates readings_1m / readings_1h
-- (0003_rollups.timescale.sql) leave out-of-range readings (quality 3) out of their measurement
-- columns with FILTER (WHERE quality <> 3); the plain variant replaces the daemon's refresh.
SELECT 1;

-- TimescaleDB provides time_bucket(interval, timestamptz) itself; the plain
-- variant of this migration defines a compatible one. Nothing to do here.
SELECT 1;

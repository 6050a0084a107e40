-- Plain mode: bureau_aggregate stays the plain table of 0801 (the TimescaleDB variant makes it a
-- hypertable with compression and retention). Nothing to do.
SELECT 1;

-- Per-sensor 1-minute aggregates every enterprise reports (hazmon.plant.link Aggregates).
-- A plain table here; the TimescaleDB variant turns it into a hypertable with compression and
-- retention in a later, mode-specific migration. Online rate (在线率) = minutes with count > 0
-- over the minutes expected.

CREATE TABLE bureau_aggregate (
    enterprise_id  text NOT NULL,
    sensor         text NOT NULL,
    bucket         timestamptz NOT NULL,
    count          integer NOT NULL CHECK (count >= 0),
    min            double precision,
    mean           double precision,
    max            double precision,
    last           double precision,
    worst_quality  text,
    PRIMARY KEY (enterprise_id, sensor, bucket)
);
CREATE INDEX bureau_aggregate_bucket ON bureau_aggregate (bucket);
COMMENT ON TABLE bureau_aggregate IS
    'One row per enterprise sensor and minute (window_start): min, mean, max, last, count and worst quality of the readings.';

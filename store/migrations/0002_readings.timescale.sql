-- Readings as a TimescaleDB hypertable (TimescaleDB 2.x documentation:
-- create_hypertable with by_range, ALTER TABLE ... SET (timescaledb.compress ...),
-- add_compression_policy, add_retention_policy, continuous aggregates with
-- add_continuous_aggregate_policy). Same columns and names as the plain variant.
-- Compression age and retention are set by hazmon.store.migrate (policies).
CREATE TABLE readings (
    time      timestamptz NOT NULL,
    sensor_id integer NOT NULL,
    value     double precision NOT NULL,
    quality   smallint NOT NULL
);
SELECT create_hypertable('readings', by_range('time', INTERVAL '1 day'));
-- (sensor, time) ascending suits time-ordered arrival and makes writes idempotent;
-- a unique index on a hypertable must include the partitioning column (time).
CREATE UNIQUE INDEX readings_sensor_time ON readings (sensor_id, time);

ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'sensor_id',
    timescaledb.compress_orderby = 'time'
);

CREATE MATERIALIZED VIEW readings_1m
WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       sensor_id,
       min(value) AS min,
       max(value) AS max,
       avg(value) AS avg,
       last(value, time) AS last,
       count(*) AS n
FROM readings
GROUP BY bucket, sensor_id
WITH NO DATA;

CREATE MATERIALIZED VIEW readings_1h
WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket,
       sensor_id,
       min(value) AS min,
       max(value) AS max,
       avg(value) AS avg,
       last(value, time) AS last,
       count(*) AS n
FROM readings
GROUP BY bucket, sensor_id
WITH NO DATA;

SELECT add_continuous_aggregate_policy('readings_1m',
    start_offset => INTERVAL '2 hours',
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('readings_1h',
    start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');

-- In TimescaleDB mode the policies refresh the aggregates; the daemon's periodic
-- call is then a no-op, so the same code runs in both modes.
CREATE FUNCTION hazmon_refresh_rollups(p_from timestamptz, p_to timestamptz)
RETURNS void LANGUAGE sql AS $$ SELECT $$;

CREATE FUNCTION hazmon_apply_retention(p_days integer)
RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    IF p_days < 30 THEN
        RAISE EXCEPTION 'retention of % days is under the 30 days required by law', p_days;
    END IF;
    RETURN 0;  -- the retention policy drops chunks
END;
$$;

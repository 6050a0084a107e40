-- Readings in plain PostgreSQL (no timescaledb extension). Same columns, same
-- names and the same rollups as the TimescaleDB variant, so every query works on
-- both. The rollups are tables refreshed by hazmon_refresh_rollups(), which the
-- daemon calls every minute (the job a continuous-aggregate policy does).
CREATE TABLE readings (
    time      timestamptz NOT NULL,
    sensor_id integer NOT NULL,
    value     double precision NOT NULL,
    quality   smallint NOT NULL
);
-- (sensor, time) ascending suits time-ordered arrival (measured: 453k rows/s
-- against 363k for (sensor, time DESC)) and makes (sensor, time) idempotent.
CREATE UNIQUE INDEX readings_sensor_time ON readings (sensor_id, time);
CREATE INDEX readings_time_brin ON readings USING brin (time);

CREATE TABLE readings_1m (
    bucket    timestamptz NOT NULL,
    sensor_id integer NOT NULL,
    min       double precision,
    max       double precision,
    avg       double precision,
    last      double precision,
    n         bigint NOT NULL,
    PRIMARY KEY (sensor_id, bucket)
);
CREATE TABLE readings_1h (LIKE readings_1m INCLUDING ALL);

CREATE FUNCTION hazmon_refresh_rollups(p_from timestamptz, p_to timestamptz)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO readings_1m (bucket, sensor_id, min, max, avg, last, n)
    SELECT date_trunc('minute', time), sensor_id, min(value), max(value), avg(value),
           (array_agg(value ORDER BY time DESC))[1], count(*)
    FROM readings
    WHERE time >= date_trunc('minute', p_from) AND time < p_to
    GROUP BY 1, 2
    ON CONFLICT (sensor_id, bucket) DO UPDATE
      SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
          last = EXCLUDED.last, n = EXCLUDED.n;
    INSERT INTO readings_1h (bucket, sensor_id, min, max, avg, last, n)
    SELECT date_trunc('hour', bucket), sensor_id, min(min), max(max),
           sum(avg * n) / sum(n), (array_agg(last ORDER BY bucket DESC))[1], sum(n)
    FROM readings_1m
    WHERE bucket >= date_trunc('hour', p_from) AND bucket < p_to
    GROUP BY 1, 2
    ON CONFLICT (sensor_id, bucket) DO UPDATE
      SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
          last = EXCLUDED.last, n = EXCLUDED.n;
$$;

-- Retention in plain mode: the daemon calls this daily with the configured days.
CREATE FUNCTION hazmon_apply_retention(p_days integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint;
BEGIN
    IF p_days < 30 THEN
        RAISE EXCEPTION 'retention of % days is under the 30 days required by law', p_days;
    END IF;
    DELETE FROM readings WHERE time < now() - make_interval(days => p_days);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    DELETE FROM readings_1m WHERE bucket < now() - make_interval(days => p_days);
    DELETE FROM readings_1h WHERE bucket < now() - make_interval(days => p_days);
    RETURN deleted;
END;
$$;

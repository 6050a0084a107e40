-- Rollups that keep up, count quality, keep their own retention and compress (issue 13).
-- TimescaleDB documentation (2.x): CREATE MATERIALIZED VIEW ... WITH (timescaledb.continuous,
-- timescaledb.materialized_only = false) (real-time aggregation: buckets newer than the last
-- refresh are computed from the raw rows at query time, so the newest 1-minute and 1-hour
-- buckets are never behind); ALTER MATERIALIZED VIEW ... SET (timescaledb.compress = true)
-- (segment by the GROUP BY column sensor_id, order by bucket); set_chunk_time_interval.
-- The refresh, compression and retention policies are created (once) and changed (only when
-- the settings change) by hazmon.store.migrate; a view cannot be altered to add a column, so
-- both aggregates are re-created here and hazmon.store.migrate refreshes them over all the
-- raw data right after (a bucket below the refresh watermark that was never materialized
-- would vanish from the real-time view).
DROP MATERIALIZED VIEW readings_1h;
DROP MATERIALIZED VIEW readings_1m;

CREATE MATERIALIZED VIEW readings_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket,
       sensor_id,
       min(value) FILTER (WHERE quality <> 3) AS min,  -- quality 3: out of range, not a measurement
       max(value) FILTER (WHERE quality <> 3) AS max,
       avg(value) FILTER (WHERE quality <> 3) AS avg,
       last(value, time) FILTER (WHERE quality <> 3) AS last,
       count(*) FILTER (WHERE quality <> 3) AS n,
       count(*) FILTER (WHERE quality <> 0) AS bad
FROM readings
GROUP BY bucket, sensor_id
WITH NO DATA;

CREATE MATERIALIZED VIEW readings_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket,
       sensor_id,
       min(value) FILTER (WHERE quality <> 3) AS min,  -- quality 3: out of range, not a measurement
       max(value) FILTER (WHERE quality <> 3) AS max,
       avg(value) FILTER (WHERE quality <> 3) AS avg,
       last(value, time) FILTER (WHERE quality <> 3) AS last,
       count(*) FILTER (WHERE quality <> 3) AS n,
       count(*) FILTER (WHERE quality <> 0) AS bad
FROM readings
GROUP BY bucket, sensor_id
WITH NO DATA;

-- Retention drops whole chunks: a rollup is kept for its retention plus at most one chunk.
SELECT set_chunk_time_interval('readings_1m', INTERVAL '7 days');
SELECT set_chunk_time_interval('readings_1h', INTERVAL '60 days');

ALTER MATERIALIZED VIEW readings_1m SET (timescaledb.compress = true);
ALTER MATERIALIZED VIEW readings_1h SET (timescaledb.compress = true);

-- The rollups are refreshed by hazmon.store.refresh_rollups (CALL refresh_continuous_aggregate
-- cannot run inside a function); this stays a no-op so plain-mode callers run unchanged.
CREATE OR REPLACE FUNCTION hazmon_refresh_rollups(p_from timestamptz, p_to timestamptz)
RETURNS void LANGUAGE sql AS $$ SELECT $$;

CREATE FUNCTION hazmon_apply_retention(p_days integer, p_1m_days integer, p_1h_days integer)
RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    IF p_days < 30 THEN
        RAISE EXCEPTION 'retention of % days is under the 30 days required by law', p_days;
    END IF;
    IF p_1m_days < p_days OR p_1h_days < p_1m_days THEN
        RAISE EXCEPTION 'rollup retention (1m % days, 1h % days) must not be shorter than the raw data''s % days (nor 1h than 1m)',
            p_1m_days, p_1h_days, p_days;
    END IF;
    RETURN 0;  -- the retention policies drop chunks
END;
$$;

-- Rollups that count quality, are written bucket by bucket, and keep their own retention
-- (issue 13). Plain mode: readings_1m / readings_1h stay tables the daemon refreshes.

-- Non-good readings per bucket: the sensor-health panels sum these instead of scanning raw
-- readings (which on TimescaleDB are compressed and have no partial index).
ALTER TABLE readings_1m ADD COLUMN bad bigint NOT NULL DEFAULT 0;
ALTER TABLE readings_1h ADD COLUMN bad bigint NOT NULL DEFAULT 0;
-- existing buckets: non-good readings are rare, the partial index readings_not_good finds them
UPDATE readings_1m r SET bad = x.n
FROM (SELECT date_trunc('minute', time) AS bucket, sensor_id, count(*) AS n
      FROM readings WHERE quality <> 0 GROUP BY 1, 2) x
WHERE r.sensor_id = x.sensor_id AND r.bucket = x.bucket;
UPDATE readings_1h r SET bad = x.n
FROM (SELECT date_trunc('hour', time) AS bucket, sensor_id, count(*) AS n
      FROM readings WHERE quality <> 0 GROUP BY 1, 2) x
WHERE r.sensor_id = x.sensor_id AND r.bucket = x.bucket;

-- Refresh every bucket that [p_from, p_to) touches from all of that bucket's data: a range
-- ending inside a minute or an hour never rewrites that bucket from part of it (before, a
-- refresh to 04:03 rewrote the 04:00 hour from three minutes of data).
CREATE OR REPLACE FUNCTION hazmon_refresh_rollups(p_from timestamptz, p_to timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m_from timestamptz := date_trunc('minute', p_from);
    m_to timestamptz := date_trunc('minute', p_to - interval '1 microsecond') + interval '1 minute';
    h_from timestamptz := date_trunc('hour', p_from);
    h_to timestamptz := date_trunc('hour', p_to - interval '1 microsecond') + interval '1 hour';
BEGIN
    IF p_to <= p_from THEN
        RETURN;
    END IF;
    INSERT INTO readings_1m (bucket, sensor_id, min, max, avg, last, n, bad)
    SELECT date_trunc('minute', time), sensor_id, min(value), max(value), avg(value),
           (array_agg(value ORDER BY time DESC))[1], count(*), count(*) FILTER (WHERE quality <> 0)
    FROM readings
    WHERE time >= m_from AND time < m_to
    GROUP BY 1, 2
    ON CONFLICT (sensor_id, bucket) DO UPDATE
      SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
          last = EXCLUDED.last, n = EXCLUDED.n, bad = EXCLUDED.bad;
    INSERT INTO readings_1h (bucket, sensor_id, min, max, avg, last, n, bad)
    SELECT date_trunc('hour', bucket), sensor_id, min(min), max(max),
           sum(avg * n) / sum(n), (array_agg(last ORDER BY bucket DESC))[1], sum(n), sum(bad)
    FROM readings_1m
    WHERE bucket >= h_from AND bucket < h_to
    GROUP BY 1, 2
    ON CONFLICT (sensor_id, bucket) DO UPDATE
      SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
          last = EXCLUDED.last, n = EXCLUDED.n, bad = EXCLUDED.bad;
END;
$$;

-- Retention with a period per store: raw readings, 1-minute and 1-hour rollups (each rollup
-- kept at least as long as the raw readings, so a chart never loses history first).
CREATE FUNCTION hazmon_apply_retention(p_days integer, p_1m_days integer, p_1h_days integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint;
BEGIN
    IF p_days < 30 THEN
        RAISE EXCEPTION 'retention of % days is under the 30 days required by law', p_days;
    END IF;
    IF p_1m_days < p_days OR p_1h_days < p_1m_days THEN
        RAISE EXCEPTION 'rollup retention (1m % days, 1h % days) must not be shorter than the raw data''s % days (nor 1h than 1m)',
            p_1m_days, p_1h_days, p_days;
    END IF;
    DELETE FROM readings WHERE time < now() - make_interval(days => p_days);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    DELETE FROM readings_1m WHERE bucket < now() - make_interval(days => p_1m_days);
    DELETE FROM readings_1h WHERE bucket < now() - make_interval(days => p_1h_days);
    RETURN deleted;
END;
$$;

-- The one-argument form keeps each rollup's configured retention (hazmon_meta, written by
-- hazmon.store.migrate), never shorter than the raw data's.
CREATE OR REPLACE FUNCTION hazmon_apply_retention(p_days integer)
RETURNS bigint LANGUAGE sql AS $$
    SELECT hazmon_apply_retention(
        p_days,
        greatest(p_days, coalesce((SELECT value::integer FROM hazmon_meta WHERE key = 'retention_1m_days'), p_days)),
        greatest(p_days, coalesce((SELECT value::integer FROM hazmon_meta WHERE key = 'retention_1m_days'), p_days),
                 coalesce((SELECT value::integer FROM hazmon_meta WHERE key = 'retention_1h_days'), p_days)))
$$;

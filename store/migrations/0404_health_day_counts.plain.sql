-- Plain mode: a 30-day sensor-health panel summed 500 sensors x 720 hourly rows of
-- readings_1h (360,000 rows, 160-260 ms on the loaded 2-core bench machine; goal 200 ms,
-- issue 13). readings_1d_counts keeps, per sensor and UTC day, the sums of readings_1h's n
-- and bad; hazmon_sensor_health reads whole days from it and readings_1h only for the hours
-- before the first and after the last whole day of its range (15,000 + at most 47 x 500 rows
-- for 30 days).
--
-- Kept by triggers on readings_1h in the transaction that writes it (the daemon's
-- hazmon_refresh_rollups, retention): every day a written, changed or deleted hourly row
-- belongs to is recomputed whole from readings_1h, never incremented, so late data refreshed
-- into readings_1h reaches its day in the same commit. One advisory lock serializes the
-- recomputes from the first one to commit (READ COMMITTED: the next writer sees the
-- previous one's hours). TimescaleDB mode keeps the 0403 function (readings_1h is a
-- continuous aggregate there; see 0404_health_day_counts.timescale.sql).

CREATE TABLE readings_1d_counts (
    sensor_id integer NOT NULL,
    day       timestamptz NOT NULL,
    n         bigint NOT NULL,
    bad       bigint NOT NULL,
    PRIMARY KEY (sensor_id, day)
);
CREATE INDEX readings_1d_counts_day ON readings_1d_counts (day);
COMMENT ON TABLE readings_1d_counts IS
    'Per sensor and UTC day: sum(n) and sum(bad) of readings_1h (plain mode), kept whole by triggers on readings_1h; read by hazmon_sensor_health.';

-- Rewrites the days (UTC midnights) from readings_1h.
CREATE FUNCTION hazmon_day_counts_recompute(p_days timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_days IS NULL OR cardinality(p_days) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7243661058128); -- 'readings_1d_counts': one recompute at a time
    DELETE FROM readings_1d_counts WHERE day = ANY (p_days);
    INSERT INTO readings_1d_counts (sensor_id, day, n, bad)
    SELECT r.sensor_id, d.day, sum(r.n), sum(r.bad)
    FROM unnest(p_days) AS d (day)
    JOIN readings_1h r ON r.bucket >= d.day AND r.bucket < d.day + interval '1 day'
    GROUP BY 1, 2;
END;
$$;

CREATE FUNCTION hazmon_day_counts_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hazmon_day_counts_recompute((
        SELECT array_agg(DISTINCT date_trunc('day', n.bucket, 'UTC')) FROM new_hours n));
    RETURN NULL;
END;
$$;
CREATE FUNCTION hazmon_day_counts_on_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- the refresh's ON CONFLICT DO UPDATE: only rows whose counts (or hour) changed matter
    PERFORM hazmon_day_counts_recompute((
        SELECT array_agg(DISTINCT x.day) FROM (
            SELECT date_trunc('day', o.bucket, 'UTC') AS day
            FROM old_hours o JOIN new_hours n ON n.sensor_id = o.sensor_id AND n.bucket = o.bucket
            WHERE (n.n, n.bad) IS DISTINCT FROM (o.n, o.bad)
            UNION
            SELECT date_trunc('day', o.bucket, 'UTC') FROM old_hours o
            WHERE NOT EXISTS (SELECT 1 FROM new_hours n WHERE n.sensor_id = o.sensor_id AND n.bucket = o.bucket)
            UNION
            SELECT date_trunc('day', n.bucket, 'UTC') FROM new_hours n
            WHERE NOT EXISTS (SELECT 1 FROM old_hours o WHERE n.sensor_id = o.sensor_id AND n.bucket = o.bucket)
        ) x));
    RETURN NULL;
END;
$$;
CREATE FUNCTION hazmon_day_counts_on_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hazmon_day_counts_recompute((
        SELECT array_agg(DISTINCT date_trunc('day', o.bucket, 'UTC')) FROM old_hours o));
    RETURN NULL;
END;
$$;
CREATE FUNCTION hazmon_day_counts_on_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM readings_1d_counts;
    RETURN NULL;
END;
$$;
CREATE TRIGGER readings_1d_counts_insert AFTER INSERT ON readings_1h
    REFERENCING NEW TABLE AS new_hours FOR EACH STATEMENT EXECUTE FUNCTION hazmon_day_counts_on_insert();
CREATE TRIGGER readings_1d_counts_update AFTER UPDATE ON readings_1h
    REFERENCING OLD TABLE AS old_hours NEW TABLE AS new_hours
    FOR EACH STATEMENT EXECUTE FUNCTION hazmon_day_counts_on_update();
CREATE TRIGGER readings_1d_counts_delete AFTER DELETE ON readings_1h
    REFERENCING OLD TABLE AS old_hours FOR EACH STATEMENT EXECUTE FUNCTION hazmon_day_counts_on_delete();
CREATE TRIGGER readings_1d_counts_truncate AFTER TRUNCATE ON readings_1h
    FOR EACH STATEMENT EXECUTE FUNCTION hazmon_day_counts_on_truncate();

-- The history already there.
INSERT INTO readings_1d_counts (sensor_id, day, n, bad)
SELECT sensor_id, date_trunc('day', bucket, 'UTC'), sum(n), sum(bad) FROM readings_1h GROUP BY 1, 2;

-- 0403's function; the hourly path reads whole UTC days from readings_1d_counts.
CREATE OR REPLACE FUNCTION hazmon_sensor_health(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (sensor_id integer, enterprise_id text, hazard_source_id integer, tag text, kind text,
               last_time timestamptz, age_s double precision, last_quality smallint, status text,
               not_good bigint, received bigint, expected double precision, completeness double precision)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
DECLARE
    hourly boolean := p_to - p_from > interval '6 hours';
    w_from timestamptz;
    w_to timestamptz;
    d_from timestamptz;  -- whole days [d_from, d_to) inside [w_from, w_to)
    d_to timestamptz;
    m_from timestamptz := date_trunc('minute', p_from + interval '1 minute' - interval '1 microsecond');
    m_to timestamptz := date_trunc('minute', p_to);
    raw1_to timestamptz;  -- raw readings over [p_from, raw1_to) and [raw2_from, p_to)
    raw2_from timestamptz;
BEGIN
    IF hourly THEN
        w_from := date_trunc('hour', p_from + interval '1 hour' - interval '1 microsecond');
        w_to := date_trunc('hour', p_to);
        raw1_to := p_from;
        raw2_from := m_to;
        d_from := date_trunc('day', w_from + interval '1 day' - interval '1 microsecond', 'UTC');
        d_to := date_trunc('day', w_to, 'UTC');
        IF d_to <= d_from THEN  -- no whole day: every hour from readings_1h
            d_from := w_to;
            d_to := w_to;
        END IF;
    ELSE
        w_from := m_from;
        w_to := m_to;
        IF w_to < w_from THEN  -- a range inside one minute: all of it from raw readings
            w_to := w_from;
        END IF;
        raw1_to := least(w_from, p_to);
        raw2_from := greatest(w_to, p_from);
    END IF;
    RETURN QUERY
    WITH got AS (
        SELECT x.sensor_id, sum(x.n)::bigint AS n, sum(x.bad)::bigint AS bad FROM (
            SELECT r.sensor_id, r.n, r.bad FROM readings_1h r
            WHERE hourly AND r.bucket >= w_from AND r.bucket < d_from
            UNION ALL
            SELECT d.sensor_id, d.n, d.bad FROM readings_1d_counts d
            WHERE hourly AND d.day >= d_from AND d.day < d_to
            UNION ALL
            SELECT r.sensor_id, r.n, r.bad FROM readings_1h r
            WHERE hourly AND r.bucket >= d_to AND r.bucket < w_to
        ) x GROUP BY 1
        UNION ALL
        SELECT r.sensor_id, sum(r.n)::bigint, sum(r.bad)::bigint FROM readings_1m r
        WHERE NOT hourly AND r.bucket >= w_from AND r.bucket < w_to GROUP BY 1
    ), edges AS (
        SELECT e.sensor_id, sum(e.n)::bigint AS n FROM (
            SELECT r.sensor_id, r.bad AS n FROM readings_1m r
            WHERE hourly AND r.bucket >= m_from AND r.bucket < w_from
            UNION ALL
            SELECT r.sensor_id, r.bad FROM readings_1m r
            WHERE hourly AND r.bucket >= w_to AND r.bucket < m_to
            UNION ALL
            SELECT r.sensor_id, 1 FROM readings r  -- each range pruned to its own chunks
            WHERE r.quality <> 0 AND r.time >= p_from AND r.time < raw1_to
            UNION ALL
            SELECT r.sensor_id, 1 FROM readings r
            WHERE r.quality <> 0 AND r.time >= raw2_from AND r.time < p_to
        ) e GROUP BY 1
    )
    SELECT l.sensor_id, l.enterprise_id, l.hazard_source_id, l.tag, l.kind, l.time, l.age_s,
           l.quality, l.status,
           coalesce(got.bad, 0) + coalesce(edges.n, 0), coalesce(got.n, 0),
           greatest(extract(epoch FROM w_to - w_from)::float8, 0) / l.period_s,
           CASE WHEN w_to > w_from
                THEN least(1.0, coalesce(got.n, 0) / (extract(epoch FROM w_to - w_from)::float8 / l.period_s))
           END
    FROM hazmon_sensor_latest l
    LEFT JOIN got ON got.sensor_id = l.sensor_id
    LEFT JOIN edges ON edges.sensor_id = l.sensor_id;
END;
$$;

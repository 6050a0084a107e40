-- TimescaleDB mode: the sensor-health panel reads whole UTC days from readings_1d_counts, as
-- plain mode does since 0404 (a 30-day panel summed 500 sensors x 720 rows of readings_1h,
-- 360,000 rows; now 15,000 day rows and at most 47 edge hours per sensor; issue 13).
--
-- readings_1d_counts is a hierarchical continuous aggregate: a continuous aggregate on the
-- continuous aggregate readings_1h (TimescaleDB docs, "Hierarchical continuous aggregates",
-- TimescaleDB 2.9 and later; the 1-day bucket is a multiple of the 1-hour one, both fixed
-- width). Same columns as plain mode's table: per sensor and UTC day, sum(n) and sum(bad) of
-- readings_1h (time_bucket's default origin puts 1-day buckets on UTC midnights).
--
-- Real-time (materialized_only = false), like readings_1m and readings_1h (0003): days newer
-- than its last refresh are computed from readings_1h, itself real-time down to the raw rows
-- ("each continuous aggregate is only aware of the layer immediately below; the joining of
-- unmaterialized data happens recursively"), so a late or failing refresh policy never makes
-- the panel under-report; since TimescaleDB 2.13 materialized_only defaults to true, hence
-- the explicit setting.
--
-- A refresh of readings_1d_counts reads readings_1h as it stands (materialized hours, and the
-- raw rows above its watermark: seen on the 2.23 test build). Late data below readings_1h's
-- watermark reaches the days once readings_1h is refreshed over it, which records an
-- invalidation of those days, so readings_1h is refreshed first and readings_1d_counts after:
-- hazmon.store.refresh_rollups does both, in that order, over the ranges written, and
-- hazmon.store.migrate materializes it once after this migration and creates its refresh,
-- compression and retention policies once (store/README.md).
CREATE MATERIALIZED VIEW readings_1d_counts
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS day,
       sensor_id,
       sum(n)::bigint AS n,
       sum(bad)::bigint AS bad
FROM readings_1h
GROUP BY day, sensor_id
WITH NO DATA;

-- Retention drops whole chunks (kept its retention plus at most one chunk): 500 sensors make
-- 91,000 rows per 180 days.
SELECT set_chunk_time_interval('readings_1d_counts', INTERVAL '180 days');
ALTER MATERIALIZED VIEW readings_1d_counts SET (timescaledb.compress = true);
COMMENT ON VIEW readings_1d_counts IS
    'Per sensor and UTC day: sum(n) and sum(bad) of readings_1h (TimescaleDB: hierarchical continuous aggregate, real-time); read by hazmon_sensor_health.';

-- 0404's function (plain mode), the same text: whole days from readings_1d_counts, readings_1h
-- for the hours before the first and after the last whole day. tests/store/test_health_day_counts.py
-- checks the two definitions stay identical.
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

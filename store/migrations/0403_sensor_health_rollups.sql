-- Sensor health counts non-good readings from the rollups' `bad` column (store migration
-- 0003) over the whole buckets inside the range. Before, it scanned every raw reading with
-- quality <> 0 over the range: fast on plain PostgreSQL with the partial index
-- readings_not_good, 7-8x slower on compressed TimescaleDB chunks, which have no such index.
-- The partial buckets at the two ends: over minute buckets (ranges up to 6 hours) from raw
-- readings (under a minute each); over hourly buckets from readings_1m's whole minutes, and
-- the trailing part-minute from raw readings (recent, not compressed). The leading
-- part-minute of an hourly range (under 60 s of more than 6 hours) is not counted: raw
-- readings there are usually in compressed chunks, where any read decompresses a batch of
-- every sensor.
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
        SELECT r.sensor_id, sum(r.n)::bigint AS n, sum(r.bad)::bigint AS bad FROM readings_1h r
        WHERE hourly AND r.bucket >= w_from AND r.bucket < w_to GROUP BY 1
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

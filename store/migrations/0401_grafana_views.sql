-- Views and functions the Grafana panels read (hazmon.grafana). Plain SQL on the
-- common tables, so it runs unchanged on plain PostgreSQL and on TimescaleDB
-- (where readings_1m / readings_1h are continuous aggregates with the same
-- columns). Domain numbers come from hazmon.plant.standards; the functions
-- below repeat them once, and tests/grafana check that they still agree.

-- SAWS Order 40 (2011, amended 2015): reassess every 3 years, file within 15 days.
CREATE FUNCTION hazmon_reassessment_years() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 3 $$;          -- standards.REASSESSMENT_YEARS
CREATE FUNCTION hazmon_filing_days() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 15 $$;         -- standards.FILING_DAYS
-- A sensor is stale after this many periods without a reading (never sooner
-- than the floor): what the control room sees as 通信中断.
CREATE FUNCTION hazmon_stale_after_s(p_period_s double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(3 * p_period_s, 10.0)                        -- standards.STALE_AFTER_PERIODS, STALE_MIN_S
$$;

-- Non-good readings are rare: a partial index makes "bad-quality readings in the
-- last 30 days" a small index scan instead of a scan of every reading.
CREATE INDEX readings_not_good ON readings (time, sensor_id) WHERE quality <> 0;

-- Region filter of the bureau dashboards: a province code (xx0000) matches its
-- whole province, a city code (xxxx00) its city, a county code itself; '' or
-- NULL matches everything.
CREATE FUNCTION hazmon_region_match(p_code text, p_filter text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN coalesce(p_filter, '') IN ('', '000000') THEN true
        WHEN p_filter LIKE '__0000' THEN left(p_code, 2) = left(p_filter, 2)
        WHEN p_filter LIKE '____00' THEN left(p_code, 4) = left(p_filter, 4)
        ELSE p_code = p_filter
    END
$$;

-- Where a value stands against its limits: hh, h, l, ll or normal (NULL: no value).
CREATE FUNCTION hazmon_limit_state(v double precision, p_hh double precision, p_h double precision,
                                   p_l double precision, p_ll double precision) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN v IS NULL THEN NULL
        WHEN v >= p_hh THEN 'hh'
        WHEN v <= p_ll THEN 'll'
        WHEN v >= p_h THEN 'h'
        WHEN v <= p_l THEN 'l'
        ELSE 'normal'
    END
$$;

-- The limits of every sensor as rows (one per set limit), for drawing them.
CREATE VIEW hazmon_sensor_limits AS
SELECT s.id AS sensor_id, s.hazard_source_id, s.tag, s.kind, l.name, l.value
FROM sensor s
CROSS JOIN LATERAL (VALUES ('hh', s.hh), ('h', s.h), ('l', s.l), ('ll', s.ll)) AS l (name, value)
WHERE l.value IS NOT NULL AND NOT s.retired;

-- Latest reading of every sensor (one index probe per sensor) and its status:
-- no_data, stale (nothing for hazmon_stale_after_s), bad (quality 2),
-- out_of_range (outside the transmitter's range), uncertain (quality 1) or ok.
CREATE VIEW hazmon_sensor_latest AS
SELECT x.*,
       CASE
           WHEN x.time IS NULL THEN 'no_data'
           WHEN x.age_s > hazmon_stale_after_s(x.period_s) THEN 'stale'
           WHEN x.quality = 2 THEN 'bad'
           WHEN x.value < x.range_lo OR x.value > x.range_hi THEN 'out_of_range'
           WHEN x.quality = 1 THEN 'uncertain'
           ELSE 'ok'
       END AS status
FROM (
    SELECT s.id AS sensor_id, s.enterprise_id, s.hazard_source_id, s.tag, s.kind, s.unit, s.description,
           s.is_key, s.period_s, s.range_lo, s.range_hi, s.hh, s.h, s.l, s.ll,
           r.time, r.value, r.quality,
           extract(epoch FROM now() - r.time)::float8 AS age_s,
           hazmon_limit_state(r.value, s.hh, s.h, s.l, s.ll) AS limit_state
    FROM sensor s
    LEFT JOIN LATERAL (
        SELECT y.time, y.value, y.quality FROM readings y
        WHERE y.sensor_id = s.id ORDER BY y.time DESC LIMIT 1
    ) r ON true
    WHERE NOT s.retired
) x;

-- One series per sensor, bucketed to p_step_ms, read from the coarsest store
-- that still resolves the step: readings_1h for steps of an hour or more,
-- readings_1m for a minute or more, raw readings below. Grafana passes
-- $__interval_ms, which grows with the dashboard's time range, so a 30-day panel
-- reads hourly rows and a 1-hour panel reads raw readings. One (sensor, time)
-- index range per sensor (LATERAL), never a scan of every sensor's bucket.
CREATE FUNCTION hazmon_series(p_sensors integer[], p_from timestamptz, p_to timestamptz, p_step_ms bigint)
RETURNS TABLE ("time" timestamptz, sensor_id integer, min double precision, max double precision,
               avg double precision, last double precision)
-- Plan each call with its arguments: a cached generic plan does not know the
-- range is narrow and may walk the bucket index of every sensor (5x slower).
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
DECLARE
    step double precision := greatest(p_step_ms, 1) / 1000.0;
BEGIN
    IF p_step_ms >= 3600000 THEN
        RETURN QUERY
        SELECT to_timestamp(floor(extract(epoch FROM r.bucket)::float8 / step) * step), r.sensor_id,
               min(r.min), max(r.max), sum(r.avg * r.n) / nullif(sum(r.n), 0),
               (array_agg(r.last ORDER BY r.bucket DESC))[1]
        FROM unnest(p_sensors) AS s (id)
        CROSS JOIN LATERAL (
            SELECT x.* FROM readings_1h x
            WHERE x.sensor_id = s.id AND x.bucket >= date_trunc('hour', p_from) AND x.bucket <= p_to
        ) r
        GROUP BY 1, 2;
    ELSIF p_step_ms >= 60000 THEN
        RETURN QUERY
        SELECT to_timestamp(floor(extract(epoch FROM r.bucket)::float8 / step) * step), r.sensor_id,
               min(r.min), max(r.max), sum(r.avg * r.n) / nullif(sum(r.n), 0),
               (array_agg(r.last ORDER BY r.bucket DESC))[1]
        FROM unnest(p_sensors) AS s (id)
        CROSS JOIN LATERAL (
            SELECT x.* FROM readings_1m x
            WHERE x.sensor_id = s.id AND x.bucket >= date_trunc('minute', p_from) AND x.bucket <= p_to
        ) r
        GROUP BY 1, 2;
    ELSE
        RETURN QUERY
        SELECT to_timestamp(floor(extract(epoch FROM r.time)::float8 / step) * step), r.sensor_id,
               min(r.value), max(r.value), avg(r.value),
               (array_agg(r.value ORDER BY r.time DESC))[1]
        FROM unnest(p_sensors) AS s (id)
        CROSS JOIN LATERAL (
            SELECT x.* FROM readings x
            WHERE x.sensor_id = s.id AND x.time >= p_from AND x.time <= p_to
        ) r
        GROUP BY 1, 2;
    END IF;
END;
$$;

-- Health of every sensor over [p_from, p_to): latest state, non-good readings,
-- and completeness (readings received / readings expected at its period) over
-- the whole rollup buckets inside the range (hourly buckets beyond 6 hours).
CREATE FUNCTION hazmon_sensor_health(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (sensor_id integer, enterprise_id text, hazard_source_id integer, tag text, kind text,
               last_time timestamptz, age_s double precision, last_quality smallint, status text,
               not_good bigint, received bigint, expected double precision, completeness double precision)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
DECLARE
    hourly boolean := p_to - p_from > interval '6 hours';
    w_from timestamptz;
    w_to timestamptz;
BEGIN
    IF hourly THEN
        w_from := date_trunc('hour', p_from + interval '1 hour' - interval '1 microsecond');
        w_to := date_trunc('hour', p_to);
    ELSE
        w_from := date_trunc('minute', p_from + interval '1 minute' - interval '1 microsecond');
        w_to := date_trunc('minute', p_to);
    END IF;
    RETURN QUERY
    WITH got AS (
        SELECT r.sensor_id, sum(r.n)::bigint AS n FROM readings_1h r
        WHERE hourly AND r.bucket >= w_from AND r.bucket < w_to GROUP BY 1
        UNION ALL
        SELECT r.sensor_id, sum(r.n)::bigint FROM readings_1m r
        WHERE NOT hourly AND r.bucket >= w_from AND r.bucket < w_to GROUP BY 1
    ), bad AS (
        SELECT r.sensor_id, count(*) AS n FROM readings r
        WHERE r.quality <> 0 AND r.time >= p_from AND r.time < p_to GROUP BY 1
    )
    SELECT l.sensor_id, l.enterprise_id, l.hazard_source_id, l.tag, l.kind, l.time, l.age_s,
           l.quality, l.status,
           coalesce(bad.n, 0), coalesce(got.n, 0),
           greatest(extract(epoch FROM w_to - w_from)::float8, 0) / l.period_s,
           CASE WHEN w_to > w_from
                THEN least(1.0, coalesce(got.n, 0) / (extract(epoch FROM w_to - w_from)::float8 / l.period_s))
           END
    FROM hazmon_sensor_latest l
    LEFT JOIN got ON got.sensor_id = l.sensor_id
    LEFT JOIN bad ON bad.sensor_id = l.sensor_id;
END;
$$;

-- Linear trend of each sensor over the window before p_to and when it will
-- cross its HH (rising) or LL (falling) limit at that rate; NULL when it is
-- not heading for one.
CREATE FUNCTION hazmon_predictions(p_hazard_source integer, p_to timestamptz, p_window interval)
RETURNS TABLE (sensor_id integer, tag text, unit text, last double precision,
               per_min double precision, limit_name text, limit_value double precision,
               crossing timestamptz)
LANGUAGE sql STABLE AS $$
    WITH t AS (
        SELECT r.sensor_id,
               regr_slope(r.value, extract(epoch FROM r.time)::float8) AS slope,
               (array_agg(r.value ORDER BY r.time DESC))[1] AS last
        FROM readings r
        JOIN sensor s ON s.id = r.sensor_id
        WHERE s.hazard_source_id = p_hazard_source AND NOT s.retired
          AND r.time > p_to - p_window AND r.time <= p_to AND r.quality = 0
        GROUP BY 1
    )
    SELECT s.id, s.tag, s.unit, t.last, t.slope * 60,
           CASE WHEN t.slope > 0 THEN 'hh' WHEN t.slope < 0 THEN 'll' END,
           CASE WHEN t.slope > 0 THEN s.hh WHEN t.slope < 0 THEN s.ll END,
           CASE
               WHEN t.slope > 0 AND s.hh IS NOT NULL AND t.last < s.hh
                   THEN p_to + make_interval(secs => (s.hh - t.last) / t.slope)
               WHEN t.slope < 0 AND s.ll IS NOT NULL AND t.last > s.ll
                   THEN p_to + make_interval(secs => (s.ll - t.last) / t.slope)
           END
    FROM sensor s
    JOIN t ON t.sensor_id = s.id
    WHERE s.hh IS NOT NULL OR s.ll IS NOT NULL;
$$;

-- Every hazard source with its latest assessment as of p_today: next due date
-- (report + 3 years; today when the inventory changed since, or when there is
-- no assessment) and the filing deadline (report + 15 days). Mirrors
-- hazmon.plant.assessment.assessment_status.
CREATE FUNCTION hazmon_assessment_register(p_today date)
RETURNS TABLE (enterprise_id text, hazard_source_id integer, code text, name text,
               plant_grade smallint, plant_r double precision, assessment_id integer,
               report_date date, assessor text, r_value double precision, grade smallint,
               filed_on date, inventory_changed boolean, next_due date, filing_deadline date,
               reassessment_overdue boolean, filing_overdue boolean)
LANGUAGE sql STABLE AS $$
    WITH x AS (
        SELECT hs.enterprise_id, hs.id AS hazard_source_id, hs.code, hs.name, hs.grade AS plant_grade,
               hs.r_value AS plant_r, a.id AS assessment_id, a.report_date, a.assessor, a.r_value,
               a.grade, a.filed_on,
               coalesce(a.inventory <> '{}'::jsonb AND a.inventory <> hs.inventory, false)
                   AS inventory_changed
        FROM hazard_source hs
        LEFT JOIN LATERAL (
            SELECT * FROM assessment a
            WHERE a.hazard_source_id = hs.id AND a.report_date <= p_today
            ORDER BY a.report_date DESC, a.id DESC LIMIT 1
        ) a ON true
    ), y AS (
        SELECT x.*,
               CASE WHEN x.assessment_id IS NULL OR x.inventory_changed THEN p_today
                    ELSE (x.report_date + make_interval(years => hazmon_reassessment_years()))::date
               END AS next_due,
               x.report_date + hazmon_filing_days() AS filing_deadline
        FROM x
    )
    SELECT y.*, y.next_due <= p_today,
           coalesce((y.filed_on IS NULL AND p_today > y.filing_deadline)
                    OR (y.filed_on IS NOT NULL AND y.filed_on > y.filing_deadline), false)
    FROM y;
$$;

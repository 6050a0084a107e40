-- Out-of-range readings (quality 3, hazmon.plant.Quality.OUT_OF_RANGE): a value outside
-- the sensor's measuring range widened by the NAMUR NE 43 band (1e308 on a 0-10 ppm
-- detector) is stored as the transmitter sent it, but it is not a measurement. The
-- writer marks it; here the raw series leaves it out, the latest-reading view calls
-- the sensor out_of_range and gives it no limit state.
-- Both modes: the rollups leave it out too (plain: 0411_out_of_range_rollups.plain.sql;
-- TimescaleDB: the continuous aggregates of 0003_rollups.timescale.sql filter it).

CREATE OR REPLACE FUNCTION hazmon_series(p_sensors integer[], p_from timestamptz, p_to timestamptz, p_step_ms bigint)
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
              AND x.quality <> 3                                  -- not a measurement: out of range
        ) r
        GROUP BY 1, 2;
    END IF;
END;
$$;

CREATE OR REPLACE VIEW hazmon_sensor_latest AS
SELECT x.*,
       CASE
           WHEN x.time IS NULL THEN 'no_data'
           WHEN x.age_s > hazmon_stale_after_s(x.period_s) THEN 'stale'
           WHEN x.quality = 2 THEN 'bad'
           WHEN x.quality = 3 THEN 'out_of_range'
           WHEN x.value < x.range_lo OR x.value > x.range_hi THEN 'out_of_range'
           WHEN x.quality = 1 THEN 'uncertain'
           ELSE 'ok'
       END AS status
FROM (
    SELECT s.id AS sensor_id, s.enterprise_id, s.hazard_source_id, s.tag, s.kind, s.unit, s.description,
           s.is_key, s.period_s, s.range_lo, s.range_hi, s.hh, s.h, s.l, s.ll,
           r.time, r.value, r.quality,
           extract(epoch FROM now() - r.time)::float8 AS age_s,
           hazmon_limit_state(CASE WHEN r.quality <> 3 THEN r.value END, s.hh, s.h, s.l, s.ll)
               AS limit_state
    FROM sensor s
    LEFT JOIN LATERAL (
        SELECT y.time, y.value, y.quality FROM readings y
        WHERE y.sensor_id = s.id ORDER BY y.time DESC LIMIT 1
    ) r ON true
    WHERE NOT s.retired
) x;

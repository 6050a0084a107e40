-- Plain mode: the rollups (readings_1m / readings_1h: min, max, avg, last, n) leave out
-- out-of-range readings (quality 3, see 0410_out_of_range.sql), so no aggregate and no
-- zoomed-out panel draws them.

-- The whole-bucket refresh of 0003_rollups.plain.sql, with quality 3 left out of the
-- measurement columns (min, max, avg, last, n) and counted in `bad` like every non-good reading.
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
    SELECT date_trunc('minute', time), sensor_id,
           min(value) FILTER (WHERE quality <> 3), max(value) FILTER (WHERE quality <> 3),
           avg(value) FILTER (WHERE quality <> 3),
           (array_agg(value ORDER BY time DESC) FILTER (WHERE quality <> 3))[1],
           count(*) FILTER (WHERE quality <> 3), count(*) FILTER (WHERE quality <> 0)
    FROM readings
    WHERE time >= m_from AND time < m_to
    GROUP BY 1, 2
    ON CONFLICT (sensor_id, bucket) DO UPDATE
      SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
          last = EXCLUDED.last, n = EXCLUDED.n, bad = EXCLUDED.bad;
    INSERT INTO readings_1h (bucket, sensor_id, min, max, avg, last, n, bad)
    SELECT date_trunc('hour', bucket), sensor_id, min(min), max(max),
           sum(avg * n) FILTER (WHERE n > 0) / nullif(sum(n), 0),
           (array_agg(last ORDER BY bucket DESC) FILTER (WHERE n > 0))[1], sum(n), sum(bad)
    FROM readings_1m
    WHERE bucket >= h_from AND bucket < h_to
    GROUP BY 1, 2
    ON CONFLICT (sensor_id, bucket) DO UPDATE
      SET min = EXCLUDED.min, max = EXCLUDED.max, avg = EXCLUDED.avg,
          last = EXCLUDED.last, n = EXCLUDED.n, bad = EXCLUDED.bad;
END;
$$;

-- The alarm KPIs for a time range, for Grafana. The views alarm_kpi_hourly and
-- alarm_kpi_chattering (as 0303 left them) group every activation ever raised before a panel's
-- time filter can apply (the filter is on the computed hour, which no index serves): their cost
-- grows with the whole alarm history kept (400 days by default), not with the panel's range.
-- These functions take the range first and read only the activations inside it through
-- alarm_event_kind_at (kind, at_us); their rows are the views' rows for the hours that overlap
-- [t_from, t_to] (an hour bucket starting before t_from counts when it reaches into the range,
-- as grafana.common.HOURS_IN_RANGE does). The bounds are scalar subqueries, computed once per
-- query (an expression of the arguments would be recomputed for every row scanned).
-- SQL, STABLE: the planner inlines them into the panel's query.

CREATE FUNCTION alarm_kpi_hourly_in(t_from timestamptz, t_to timestamptz)
RETURNS TABLE (enterprise_id text, "position" text, hour timestamptz,
               alarms bigint, red bigint, orange bigint, yellow bigint, blue bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT a.enterprise_id,
       a.position,
       date_trunc('hour', e.at) AS hour,
       count(*)                                   AS alarms,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 4) AS red,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 3) AS orange,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 2) AS yellow,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 1) AS blue
FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
WHERE e.kind = 'raised' AND NOT e.data ? 'cause'
  AND e.at_us >= (SELECT (extract(epoch FROM date_trunc('hour', t_from)) * 1e6)::bigint)
  AND e.at_us < (SELECT (extract(epoch FROM date_trunc('hour', t_to) + interval '1 hour') * 1e6)::bigint)
GROUP BY 1, 2, 3
$$;
COMMENT ON FUNCTION alarm_kpi_hourly_in(timestamptz, timestamptz) IS
    'alarm_kpi_hourly for the hours overlapping [t_from, t_to], reading only those hours'' activations.';

CREATE FUNCTION alarm_kpi_chattering_in(t_from timestamptz, t_to timestamptz)
RETURNS TABLE (enterprise_id text, "position" text, hour timestamptz, chattering_alarms bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH r AS (
    -- the activations of the range and, for the count at its first ones, a window before it
    SELECT a.enterprise_id, a.position, e.alarm_id, e.at_us,
           count(*) OVER (PARTITION BY e.alarm_id ORDER BY e.at_us
                          RANGE BETWEEN (coalesce((SELECT value FROM alarm_kpi_target
                                                   WHERE key = 'chattering_window_s'), 60) * 1e6)::bigint
                                PRECEDING AND CURRENT ROW) AS n
    FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
    WHERE e.kind = 'raised' AND NOT e.data ? 'cause'
      AND e.at_us >= (SELECT (extract(epoch FROM date_trunc('hour', t_from)) * 1e6)::bigint
                             - (coalesce((SELECT value FROM alarm_kpi_target
                                          WHERE key = 'chattering_window_s'), 60) * 1e6)::bigint)
      AND e.at_us < (SELECT (extract(epoch FROM date_trunc('hour', t_to) + interval '1 hour') * 1e6)::bigint)
)
SELECT r.enterprise_id, r.position, date_trunc('hour', to_timestamp(r.at_us / 1e6)) AS hour,
       count(DISTINCT r.alarm_id) AS chattering_alarms
FROM r
WHERE r.n >= coalesce((SELECT value FROM alarm_kpi_target WHERE key = 'chattering_count'), 3)
  AND r.at_us >= (SELECT (extract(epoch FROM date_trunc('hour', t_from)) * 1e6)::bigint)
GROUP BY 1, 2, 3
$$;
COMMENT ON FUNCTION alarm_kpi_chattering_in(timestamptz, timestamptz) IS
    'alarm_kpi_chattering for the hours overlapping [t_from, t_to], reading only those hours'' activations and the chattering window before them.';

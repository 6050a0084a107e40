-- The bureau's supervision figures per enterprise and report period (hazmon.bureau.supervision_figures,
-- bureau/README.md "Supervision figures" explains every count for a bureau officer). Read from the tables of 0870
-- (bureau_hidden_danger, bureau_duty_check, bureau_commitment, bureau_supervision).
--
-- A period is [p_start, p_end): local midnights in the bureau's time zone p_tz
-- (bureau_period_bounds). While it runs, it is cut at p_now ("cut" below): nothing after the
-- cut counts, so the figures of a past period never change with the clock.

-- '2026-03' (a month), '2026-Q3' (a quarter) or '2026' (a year) -> [local midnight of its first
-- day, local midnight after its last day) in p_tz. Anything else: SQLSTATE 22023 naming the forms.
CREATE FUNCTION bureau_period_bounds(p_period text, p_tz text DEFAULT 'Asia/Shanghai',
                                     OUT period_start timestamptz, OUT period_end timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    first date;
    months int;
BEGIN
    IF p_period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$' THEN
        first := make_date(left(p_period, 4)::int, right(p_period, 2)::int, 1);
        months := 1;
    ELSIF p_period ~ '^[0-9]{4}-Q[1-4]$' THEN
        first := make_date(left(p_period, 4)::int, 3 * (right(p_period, 1)::int - 1) + 1, 1);
        months := 3;
    ELSIF p_period ~ '^[0-9]{4}$' AND p_period <> '0000' THEN
        first := make_date(p_period::int, 1, 1);
        months := 12;
    ELSE
        RAISE EXCEPTION 'period ''%'' is not a month 2026-03, a quarter 2026-Q3 or a year 2026', p_period
            USING ERRCODE = '22023';
    END IF;
    period_start := first::timestamp AT TIME ZONE p_tz;
    period_end := (first + make_interval(months => months))::timestamp AT TIME ZONE p_tz;
END
$$;
COMMENT ON FUNCTION bureau_period_bounds(text, text) IS
    'A report period (YYYY-MM, YYYY-Qn, YYYY) as [start, end) of local midnights in the time zone.';

-- One row per enterprise whose region code starts with p_prefix ('' all) and that registered
-- before the cut (none for a period not begun):
--   screened            it reported a hidden danger found, or a responsible person's check, in the period
--   found_*             hidden dangers found in the period (found_at), general (一般) / major (重大)
--   rectified_*         of those, accepted (销号, rectified_at) before the cut
--   overdue[_major]     hidden dangers found before the cut, not accepted by then, whose deadline's
--                       next local midnight is at or before the cut (as the plant judges overdue)
--   supervisions_*      挂牌督办: opened in the period; open at the cut; open at the cut past its deadline
--   duty_checks_*       per graded (major) hazard source and role, each check interval (operational:
--                       a calendar week Monday-Monday; principal and technical: a calendar quarter)
--                       that ends inside the period, at or before the cut and after registration;
--                       done when that role checked that source inside the interval
--   commitment_*        the local days of the period whose due time (p_commitment_due, 10:00) lies
--                       after registration and at or before the cut; filed: a commitment for the
--                       day exists; on time: filed by the due time
CREATE FUNCTION bureau_supervision_figures(
    p_prefix text, p_start timestamptz, p_end timestamptz, p_now timestamptz DEFAULT now(),
    p_tz text DEFAULT 'Asia/Shanghai', p_commitment_due time DEFAULT '10:00')
RETURNS TABLE (
    enterprise_id text, name text, region_code text, screened boolean,
    found_general bigint, found_major bigint, rectified_general bigint, rectified_major bigint,
    overdue bigint, overdue_major bigint,
    supervisions_opened bigint, supervisions_open bigint, supervisions_overdue bigint,
    duty_checks_due bigint, duty_checks_done bigint,
    commitment_days_due bigint, commitments_filed bigint, commitments_on_time bigint)
LANGUAGE sql STABLE AS $$
WITH w AS (
    SELECT p_start AS s, least(p_end, greatest(p_now, p_start)) AS cut,
           (p_start AT TIME ZONE p_tz)::date AS d0, (p_end AT TIME ZONE p_tz)::date AS d1
), ent AS (
    SELECT e.enterprise_id, e.name, e.region_code::text AS region_code, e.registered_at
    FROM bureau_enterprise e, w
    WHERE e.region_code LIKE p_prefix || '%' AND e.registered_at < w.cut AND p_now > p_start
), dangers AS (
    SELECT h.enterprise_id,
           count(*) FILTER (WHERE f AND h.level = 'general') AS found_general,
           count(*) FILTER (WHERE f AND h.level = 'major') AS found_major,
           count(*) FILTER (WHERE f AND r AND h.level = 'general') AS rectified_general,
           count(*) FILTER (WHERE f AND r AND h.level = 'major') AS rectified_major,
           count(*) FILTER (WHERE late) AS overdue,
           count(*) FILTER (WHERE late AND h.level = 'major') AS overdue_major
    FROM bureau_hidden_danger h JOIN ent USING (enterprise_id) CROSS JOIN w
    CROSS JOIN LATERAL (SELECT h.found_at >= w.s AND h.found_at < w.cut AS f,
                               h.rectified_at IS NOT NULL AND h.rectified_at < w.cut AS r) x
    CROSS JOIN LATERAL (SELECT h.found_at < w.cut AND NOT x.r AND h.deadline IS NOT NULL
                               AND ((h.deadline + 1)::timestamp AT TIME ZONE p_tz) <= w.cut AS late) y
    GROUP BY h.enterprise_id
), sup AS (
    SELECT s.enterprise_id,
           count(*) FILTER (WHERE s.opened_at >= w.s AND s.opened_at < w.cut) AS opened,
           count(*) FILTER (WHERE o) AS open,
           count(*) FILTER (WHERE o AND ((s.deadline + 1)::timestamp AT TIME ZONE p_tz) <= w.cut) AS overdue
    FROM bureau_supervision s JOIN ent USING (enterprise_id) CROSS JOIN w
    CROSS JOIN LATERAL (SELECT s.opened_at < w.cut AND (s.closed_at IS NULL OR s.closed_at >= w.cut) AS o) x
    GROUP BY s.enterprise_id
), roles (role, span) AS (
    VALUES ('principal', interval '3 months'), ('technical', interval '3 months'),
           ('operational', interval '7 days')
), ends AS (
    SELECT r.role, r.span, g::date AS e
    FROM roles r CROSS JOIN w CROSS JOIN generate_series(w.d0 + 1, w.d1, interval '1 day') g
    WHERE CASE WHEN r.span = interval '7 days' THEN extract(isodow FROM g) = 1
               ELSE extract(day FROM g) = 1 AND extract(month FROM g) IN (1, 4, 7, 10) END
), due AS (
    SELECT hs.enterprise_id, hs.source_id, x.role,
           (x.e - x.span)::timestamp AT TIME ZONE p_tz AS i0, x.e::timestamp AT TIME ZONE p_tz AS i1
    FROM bureau_hazard_source hs JOIN ent USING (enterprise_id) CROSS JOIN ends x CROSS JOIN w
    WHERE bureau_grade_number(hs.grade) IS NOT NULL
      AND (x.e::timestamp AT TIME ZONE p_tz) <= w.cut
      AND (x.e::timestamp AT TIME ZONE p_tz) > ent.registered_at
), duty AS (
    SELECT d.enterprise_id, count(*) AS due,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM bureau_duty_check c
               WHERE c.enterprise_id = d.enterprise_id AND c.hazard_source = d.source_id
                 AND c.role = d.role AND c.checked_at >= d.i0 AND c.checked_at < d.i1)) AS done
    FROM due d GROUP BY d.enterprise_id
), days AS (
    SELECT ent.enterprise_id, g::date AS day, (g::date + p_commitment_due)::timestamp AT TIME ZONE p_tz AS due_at
    FROM ent CROSS JOIN w CROSS JOIN generate_series(w.d0, w.d1 - 1, interval '1 day') g
), com AS (
    SELECT dd.enterprise_id, count(*) AS due, count(c.day) AS filed,
           count(c.day) FILTER (WHERE c.filed_at <= dd.due_at) AS on_time
    FROM days dd JOIN ent USING (enterprise_id) CROSS JOIN w
    LEFT JOIN bureau_commitment c ON c.enterprise_id = dd.enterprise_id AND c.day = dd.day
    WHERE dd.due_at <= w.cut AND dd.due_at >= ent.registered_at
    GROUP BY dd.enterprise_id
), screened AS (
    SELECT h.enterprise_id FROM bureau_hidden_danger h CROSS JOIN w
    WHERE h.found_at >= w.s AND h.found_at < w.cut
    UNION
    SELECT c.enterprise_id FROM bureau_duty_check c CROSS JOIN w
    WHERE c.checked_at >= w.s AND c.checked_at < w.cut
)
SELECT ent.enterprise_id, ent.name, ent.region_code,
       EXISTS (SELECT 1 FROM screened x WHERE x.enterprise_id = ent.enterprise_id),
       coalesce(d.found_general, 0), coalesce(d.found_major, 0),
       coalesce(d.rectified_general, 0), coalesce(d.rectified_major, 0),
       coalesce(d.overdue, 0), coalesce(d.overdue_major, 0),
       coalesce(s.opened, 0), coalesce(s.open, 0), coalesce(s.overdue, 0),
       coalesce(k.due, 0), coalesce(k.done, 0),
       coalesce(c.due, 0), coalesce(c.filed, 0), coalesce(c.on_time, 0)
FROM ent
LEFT JOIN dangers d USING (enterprise_id)
LEFT JOIN sup s USING (enterprise_id)
LEFT JOIN duty k USING (enterprise_id)
LEFT JOIN com c USING (enterprise_id)
ORDER BY ent.enterprise_id
$$;
COMMENT ON FUNCTION bureau_supervision_figures(text, timestamptz, timestamptz, timestamptz, text, time) IS
    'Supervision figures per enterprise (hidden dangers, 挂牌督办, duty checks, daily commitments) for [start, end) cut at now.';

-- A GB/T 2260 code as the prefix of the county codes under it ('000000' -> '', '320000' -> '32',
-- '320100' -> '3201', a county code -> itself), for the Grafana panels' region variable.
CREATE FUNCTION bureau_region_prefix(p_code text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN coalesce(p_code, '') IN ('', '000000') THEN ''
        WHEN p_code LIKE '__0000' THEN left(p_code, 2)
        WHEN p_code LIKE '____00' THEN left(p_code, 4)
        ELSE p_code
    END
$$;

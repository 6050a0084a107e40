-- The bureau platform's Grafana dashboards (hazmon.grafana.bureau_platform) read these.
--
-- 1. bureau_grade_number: a registered grade as GB 18218 numbers it (1 = 一级, the most severe).
--    The link sends "I".."IV" (hazmon.plant.link GradeName); hazmon.bureau.figures.grade_of also
--    reads "one".."four", "1".."4" and "一级".."四级". Anything else (NULL: not major) is NULL.
-- 2. bureau_risk_24h_view gave every grade sent over the link ("I".."IV") the weight of "no
--    grade" (1): its CASE knew only one..four, 1..4 and 一级..四级. It now reads the grade through
--    bureau_grade_number, so weight = 5 - number (一级 4 … 四级 1, none 1) as GRADE_WEIGHT in
--    hazmon.plant.bureau_standards. It also shows the most severe grade number.
-- 3. bureau_online_24h_view also shows the minutes behind the rate (minutes_with_data,
--    minutes_expected) so a region's rate is pooled (sum / sum) as hazmon.bureau.figures pools it.

CREATE FUNCTION bureau_grade_number(p_grade text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE lower(trim(p_grade))
        WHEN 'i' THEN 1 WHEN 'one' THEN 1 WHEN '1' THEN 1 WHEN '一级' THEN 1
        WHEN 'ii' THEN 2 WHEN 'two' THEN 2 WHEN '2' THEN 2 WHEN '二级' THEN 2
        WHEN 'iii' THEN 3 WHEN 'three' THEN 3 WHEN '3' THEN 3 WHEN '三级' THEN 3
        WHEN 'iv' THEN 4 WHEN 'four' THEN 4 WHEN '4' THEN 4 WHEN '四级' THEN 4
    END::smallint
$$;
COMMENT ON FUNCTION bureau_grade_number(text) IS
    'GB 18218 grade number (1 = 一级 … 4 = 四级) of a registered grade (I..IV, one..four, 1..4, 一级..四级); NULL: not major.';

CREATE OR REPLACE VIEW bureau_online_24h_view AS
WITH s AS (
    SELECT bs.enterprise_id, bs.tag,
           1440.0 * 60.0 / greatest(bs.period_s, 60.0) AS expected,
           (SELECT count(*) FROM bureau_aggregate a
             WHERE a.enterprise_id = bs.enterprise_id AND a.sensor = bs.tag AND a.count > 0
               AND a.bucket >= now() - interval '24 hours' AND a.bucket < now()) AS with_data
    FROM bureau_sensor bs
)
SELECT e.enterprise_id, e.name, e.region_code, count(s.tag) AS sensors,
       CASE WHEN sum(s.expected) > 0
            THEN least(1.0, sum(least(s.with_data, s.expected)) / sum(s.expected)) END AS online_rate,
       coalesce(sum(least(s.with_data, s.expected)), 0) AS minutes_with_data,
       coalesce(sum(s.expected), 0) AS minutes_expected
FROM bureau_enterprise e LEFT JOIN s USING (enterprise_id)
GROUP BY e.enterprise_id, e.name, e.region_code;
COMMENT ON VIEW bureau_online_24h_view IS
    'Online rate (在线率) per enterprise over the last 24 h, with its minutes (Grafana).';

CREATE OR REPLACE VIEW bureau_risk_24h_view AS
WITH g AS (
    SELECT enterprise_id,
           5 - coalesce(min(bureau_grade_number(grade)), 4) AS grade_weight
    FROM bureau_hazard_source GROUP BY enterprise_id
), w AS (
    SELECT enterprise_id, count(*) AS warnings_open, sum(colour) AS open_weight
    FROM bureau_warning WHERE state <> 'closed' GROUP BY enterprise_id
)
SELECT o.enterprise_id, o.name, o.region_code,
       coalesce(g.grade_weight, 1) AS grade_weight,
       coalesce(w.warnings_open, 0) AS warnings_open,
       coalesce(w.open_weight, 0) AS open_weight,
       o.online_rate,
       coalesce(g.grade_weight, 1) * (1 + coalesce(w.open_weight, 0)) * (2 - coalesce(o.online_rate, 0)) AS risk
FROM bureau_online_24h_view o
LEFT JOIN g USING (enterprise_id)
LEFT JOIN w USING (enterprise_id);
COMMENT ON VIEW bureau_risk_24h_view IS
    'Enterprises with their risk over the last 24 h (G × (1 + W) × (2 − O)), for the ranking panel.';

-- For Grafana: the enterprises ranked by risk over the last 24 h, the same formula as
-- hazmon.bureau.figures (bureau/WARNINGS.md): risk = G × (1 + W) × (2 − O), G the weight of the
-- most severe hazard-source grade (一级 4 … 四级 1, none 1), W the open warnings weighted by
-- colour (红 4, 橙 3, 黄 2, 蓝 1: the colour number itself), O the online rate of bureau_online_24h_view (none: 0).

CREATE VIEW bureau_risk_24h_view AS
WITH g AS (
    SELECT enterprise_id,
           max(CASE lower(trim(grade))
                   WHEN 'one' THEN 4 WHEN '1' THEN 4 WHEN '一级' THEN 4
                   WHEN 'two' THEN 3 WHEN '2' THEN 3 WHEN '二级' THEN 3
                   WHEN 'three' THEN 2 WHEN '3' THEN 2 WHEN '三级' THEN 2
                   ELSE 1 END) AS grade_weight
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

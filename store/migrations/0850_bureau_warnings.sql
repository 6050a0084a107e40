-- Bureau warnings (预警, hazmon.bureau.warnings): one row per warning, computed at the bureau from
-- what the enterprises report, handled 推送 → 核查 → 反馈 → 消警 (pushed → verified → fed_back →
-- closed) with who and when in bureau_warning_event. One cause, one warning: while a warning is
-- not closed no second one exists for its cause_key (partial unique index).

CREATE TABLE bureau_warning (
    id             bigserial PRIMARY KEY,
    cause_key      text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('silent', 'source_silent', 'red_unacked', 'repeated', 'assessment_overdue')),
    colour         smallint NOT NULL CHECK (colour BETWEEN 1 AND 4),
    enterprise_id  text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    source_id      text,
    sensor         text,
    alarm_id       text,
    region_code    char(6) NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    since          timestamptz NOT NULL,
    raised_at      timestamptz NOT NULL,
    state          text NOT NULL DEFAULT 'pushed' CHECK (state IN ('pushed', 'verified', 'fed_back', 'closed')),
    cleared_at     timestamptz,
    verified_at    timestamptz,
    fed_back_at    timestamptz,
    closed_at      timestamptz,
    updated_at     timestamptz NOT NULL,
    text_zh        text NOT NULL,
    text_en        text NOT NULL,
    detail         jsonb NOT NULL DEFAULT '{}',
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);
CREATE UNIQUE INDEX bureau_warning_one_per_cause ON bureau_warning (cause_key) WHERE state <> 'closed';
CREATE INDEX bureau_warning_region ON bureau_warning (region_code, raised_at DESC);
CREATE INDEX bureau_warning_enterprise ON bureau_warning (enterprise_id, raised_at DESC);
COMMENT ON TABLE bureau_warning IS
    'Bureau warnings (预警): one per cause while not closed; colour 4 红 重大, 3 橙 较大, 2 黄 一般, 1 蓝 较低.';
COMMENT ON COLUMN bureau_warning.cause_key IS
    'silent:<ent> | source_silent:<ent>:<source> | red_unacked:<alarm> | repeated:<ent>:<sensor> | assessment_overdue:<ent>:<source>.';
COMMENT ON COLUMN bureau_warning.since IS 'When the cause began (last data, the alarm raised, the assessment due).';
COMMENT ON COLUMN bureau_warning.cleared_at IS 'When the cause was seen gone (NULL while it holds); closing (消警) stays a staff step.';

CREATE TABLE bureau_warning_event (
    id          bigserial PRIMARY KEY,
    warning_id  bigint NOT NULL REFERENCES bureau_warning (id) ON DELETE CASCADE,
    event       text NOT NULL CHECK (event IN ('raised', 'cause_cleared', 'recurred', 'verify', 'feedback', 'close')),
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    state_after text NOT NULL
);
CREATE INDEX bureau_warning_event_warning ON bureau_warning_event (warning_id, id);
COMMENT ON TABLE bureau_warning_event IS
    'History of a warning: raised, cause_cleared and recurred by the bureau (actor "bureau"), verify, feedback and close by people.';

-- For Grafana: the open warnings with their age (now() is the database clock).
CREATE VIEW bureau_warning_open_view AS
SELECT w.id, w.cause_key, w.kind, w.colour,
       (ARRAY['blue', 'yellow', 'orange', 'red'])[w.colour] AS colour_name,
       w.enterprise_id, e.name AS enterprise_name, w.source_id, w.region_code,
       w.raised_at, w.state, w.cleared_at,
       extract(epoch FROM now() - w.raised_at) AS age_s,
       w.text_zh, w.text_en
FROM bureau_warning w JOIN bureau_enterprise e USING (enterprise_id)
WHERE w.state <> 'closed';
COMMENT ON VIEW bureau_warning_open_view IS 'Open bureau warnings and their age in seconds (Grafana).';

-- For Grafana: each enterprise's online rate over the 24 h before now() (在线率: minutes with
-- data / minutes expected; a sensor reporting every period_s > 60 s is expected once a period).
CREATE VIEW bureau_online_24h_view AS
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
            THEN least(1.0, sum(least(s.with_data, s.expected)) / sum(s.expected)) END AS online_rate
FROM bureau_enterprise e LEFT JOIN s USING (enterprise_id)
GROUP BY e.enterprise_id, e.name, e.region_code;
COMMENT ON VIEW bureau_online_24h_view IS 'Online rate (在线率) per enterprise over the last 24 h (Grafana).';

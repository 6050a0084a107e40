-- The bureau platform (hazmon.bureau): what every enterprise of the region reports over the
-- link (hazmon.plant.link). A bureau runs in its own database; the tables live in the common
-- migration set so one `hazmon db migrate` serves both daemons (an enterprise database keeps
-- them empty). Numbers: 0800-0849 bureau ingest and API, 0850-0899 bureau warnings and figures.
-- Plain SQL: the same in plain and TimescaleDB modes (aggregates get their own file).

CREATE TABLE bureau_enterprise (
    enterprise_id     text PRIMARY KEY,
    region_code       char(6) NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    name              text NOT NULL,
    registration      jsonb NOT NULL,
    registered_at     timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    last_message_at   timestamptz,
    last_seq          bigint NOT NULL DEFAULT 0
);
CREATE INDEX bureau_enterprise_region ON bureau_enterprise (region_code);
COMMENT ON TABLE bureau_enterprise IS
    'One row per enterprise of the region, from its latest registration message.';
COMMENT ON COLUMN bureau_enterprise.region_code IS
    '6-digit administrative code of the county (GB/T 2260): 2 digits province, 4 city, 6 county.';
COMMENT ON COLUMN bureau_enterprise.last_message_at IS 'Bureau clock when its last message of any kind arrived.';
COMMENT ON COLUMN bureau_enterprise.last_seq IS 'Highest envelope seq stored: a gap is visible, a replay is not doubled.';

CREATE TABLE bureau_hazard_source (
    enterprise_id  text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    source_id      text NOT NULL,
    name           text NOT NULL,
    kind           text NOT NULL,
    grade          text,
    r_value        double precision NOT NULL,
    s_value        double precision NOT NULL,
    info           jsonb NOT NULL,
    PRIMARY KEY (enterprise_id, source_id)
);
COMMENT ON TABLE bureau_hazard_source IS
    'Hazard sources (重大危险源) as registered: GB 18218 grade (one..four), R and S, chemicals and responsible persons in info.';

CREATE TABLE bureau_sensor (
    enterprise_id  text NOT NULL,
    tag            text NOT NULL,
    source_id      text NOT NULL,
    kind           text NOT NULL,
    unit           text NOT NULL,
    period_s       double precision NOT NULL,
    info           jsonb NOT NULL,
    PRIMARY KEY (enterprise_id, tag),
    FOREIGN KEY (enterprise_id, source_id) REFERENCES bureau_hazard_source (enterprise_id, source_id) ON DELETE CASCADE
);
COMMENT ON TABLE bureau_sensor IS 'Sensors as registered; period_s gives the minutes of data expected (online rate).';

CREATE TABLE bureau_message (
    message_id     uuid PRIMARY KEY,
    enterprise_id  text NOT NULL,
    seq            bigint NOT NULL,
    kind           text NOT NULL,
    sent_at        timestamptz NOT NULL,
    received_at    timestamptz NOT NULL,
    skew_s         double precision NOT NULL,
    skewed         boolean NOT NULL,
    payload        jsonb NOT NULL
);
CREATE INDEX bureau_message_enterprise ON bureau_message (enterprise_id, seq);
CREATE INDEX bureau_message_kind ON bureau_message (kind, received_at);
COMMENT ON TABLE bureau_message IS
    'Every accepted message once (by message_id): a replay after an outage adds nothing.';
COMMENT ON COLUMN bureau_message.skew_s IS 'sent_at minus the bureau clock at arrival, seconds.';
COMMENT ON COLUMN bureau_message.skewed IS 'sent_at more than the allowed skew (default 300 s) ahead of the bureau clock: stored, flagged, counted.';

CREATE TABLE bureau_alarm (
    alarm_id       text PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    source_id      text NOT NULL,
    sensor         text,
    condition      text NOT NULL,
    level          text NOT NULL,
    tier           smallint NOT NULL,
    tier_name      text NOT NULL,
    state          text NOT NULL,
    raised_at      timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    acked_at       timestamptz,
    cleared_at     timestamptz,
    bureau_step    text,
    bureau_step_at timestamptz,
    message_zh     text NOT NULL DEFAULT '',
    message_en     text NOT NULL DEFAULT '',
    value          double precision,
    limit_value    double precision
);
CREATE INDEX bureau_alarm_enterprise ON bureau_alarm (enterprise_id, raised_at DESC);
CREATE INDEX bureau_alarm_open ON bureau_alarm (tier, raised_at) WHERE cleared_at IS NULL OR bureau_step IS DISTINCT FROM 'closed';
COMMENT ON TABLE bureau_alarm IS
    'Each enterprise alarm under the id the enterprise gave it (never re-numbered), its latest state from its events.';
COMMENT ON COLUMN bureau_alarm.bureau_step IS 'The bureau''s latest step on it: received, verified or closed (推送 → 核查 → 消警).';

CREATE TABLE bureau_alarm_event (
    alarm_id       text NOT NULL REFERENCES bureau_alarm (alarm_id) ON DELETE CASCADE,
    origin         text NOT NULL CHECK (origin IN ('enterprise', 'bureau')),
    event_id       bigint NOT NULL,
    event          text NOT NULL,
    at             timestamptz NOT NULL,
    actor          text NOT NULL,
    comment        text NOT NULL DEFAULT '',
    data           jsonb NOT NULL DEFAULT '{}',
    message_id     uuid,
    PRIMARY KEY (alarm_id, origin, event_id)
);
COMMENT ON TABLE bureau_alarm_event IS
    'The whole history of an alarm: the enterprise''s lifecycle events and the bureau''s steps, both sides showing the same.';

CREATE TABLE bureau_heartbeat (
    enterprise_id    text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    endpoint         text NOT NULL,
    protocol         text NOT NULL,
    connected        boolean NOT NULL,
    last_reading_at  timestamptz,
    at               timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    PRIMARY KEY (enterprise_id, endpoint)
);
COMMENT ON TABLE bureau_heartbeat IS
    'Latest heartbeat per enterprise endpoint: the daemon alive (received_at) vs the plant reached (connected, last_reading_at).';

CREATE TABLE bureau_assessment (
    enterprise_id        text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    source_id            text NOT NULL,
    as_of                date NOT NULL,
    next_due             date NOT NULL,
    reassessment_overdue boolean NOT NULL,
    filing_overdue       boolean NOT NULL,
    item                 jsonb NOT NULL,
    PRIMARY KEY (enterprise_id, source_id)
);
COMMENT ON TABLE bureau_assessment IS 'Latest assessment register line per hazard source (Order 40 periodic assessment and filing).';

CREATE TABLE bureau_dead_letter (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    enterprise_id text,
    reason_code  text NOT NULL,
    reason       text NOT NULL,
    payload      bytea NOT NULL
);
CREATE INDEX bureau_dead_letter_time ON bureau_dead_letter (received_at);
COMMENT ON TABLE bureau_dead_letter IS
    'A refused message with its reason (invalid schema, unknown enterprise, topic mismatch, oversized, flood): kept, counted, never stopping the others.';
COMMENT ON COLUMN bureau_dead_letter.payload IS 'The raw bytes, cut at 64 KiB.';

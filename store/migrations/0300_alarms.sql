-- Alarms (hazmon.alarms): an append-only event log is the truth; the alarm row is
-- its projection, written in the same transaction. Notifications go through an
-- outbox (intent recorded before sending, marked sent after), so a restart, even
-- kill -9, loses no alarm and no pending escalation. Times are kept twice: *_us is
-- hazmon's own clock (µs since the epoch; simulated time in demos and tests), the
-- timestamptz twin is derived from it for Grafana.

CREATE TABLE alarm (
    id               bigserial PRIMARY KEY,
    enterprise_id    text NOT NULL REFERENCES enterprise (id),
    hazard_source    text NOT NULL,
    sensor           text,
    condition        text NOT NULL,
    position         text NOT NULL DEFAULT 'control-room',
    region_code      char(6) NOT NULL,
    level            text NOT NULL,
    tier             smallint NOT NULL CHECK (tier BETWEEN 1 AND 4),
    tier_name        text NOT NULL,
    state            text NOT NULL,
    active           boolean NOT NULL,
    acked            boolean NOT NULL,
    latching         boolean NOT NULL DEFAULT false,
    shelved_until_us bigint,
    shelve_reason    text,
    suppressed       boolean NOT NULL DEFAULT false,
    out_of_service   boolean NOT NULL DEFAULT false,
    bureau_step      text,
    activations      integer NOT NULL DEFAULT 0,
    repeats          integer NOT NULL DEFAULT 0,
    activated_at_us  bigint,
    activated_at     timestamptz GENERATED ALWAYS AS (to_timestamp(activated_at_us / 1e6)) STORED,
    cleared_at_us    bigint,
    acked_at_us      bigint,
    acked_by         text,
    last_seen_us     bigint NOT NULL,
    last_seen_at     timestamptz GENERATED ALWAYS AS (to_timestamp(last_seen_us / 1e6)) STORED,
    value            double precision,
    limit_value      double precision,
    message_en       text NOT NULL DEFAULT '',
    message_zh       text NOT NULL DEFAULT '',
    folded           jsonb NOT NULL,
    last_event_id    bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (enterprise_id, hazard_source, sensor, condition)
);
CREATE INDEX alarm_state ON alarm (enterprise_id, state);
COMMENT ON TABLE alarm IS
    'One row per alarm (hazard source, sensor or NULL, condition): the projection of its alarm_event log. A repeating finding updates the row.';
COMMENT ON COLUMN alarm.position IS 'Operator position (console) that handles the alarm; KPIs are per position.';
COMMENT ON COLUMN alarm.region_code IS 'GB/T 2260 code of the enterprise; a bureau sees alarms whose code starts with its prefix.';
COMMENT ON COLUMN alarm.level IS 'Finding level: second | first | predictive | fault.';
COMMENT ON COLUMN alarm.tier IS 'Warning tier 1 blue, 2 yellow, 3 orange, 4 red (larger is more severe).';
COMMENT ON COLUMN alarm.tier_name IS 'red | orange | yellow | blue.';
COMMENT ON COLUMN alarm.state IS
    'ISA-18.2 / OPC UA Part 9 state: normal | active_unacked | active_acked | rtn_unacked | shelved | suppressed | out_of_service (as of updated_at; shelve expiry is applied by the daemon tick).';
COMMENT ON COLUMN alarm.active IS 'The condition is active now (a latched alarm stays active until acknowledged).';
COMMENT ON COLUMN alarm.acked IS 'Acknowledged by an operator (true in the normal state).';
COMMENT ON COLUMN alarm.latching IS 'Latching alarm (second-level gas, confirmed vote): stays active until acknowledged.';
COMMENT ON COLUMN alarm.bureau_step IS 'Bureau handling: NULL | received | verified | feedback | closed (消警).';
COMMENT ON COLUMN alarm.activations IS 'How many times the alarm went from normal to active (episodes).';
COMMENT ON COLUMN alarm.repeats IS 'Repeated active findings folded into the current episode.';
COMMENT ON COLUMN alarm.folded IS 'The folded state (hazmon.alarms.lifecycle.AlarmState) as JSON.';
COMMENT ON COLUMN alarm.last_event_id IS 'Id of the last alarm_event folded into this row.';

CREATE TABLE alarm_event (
    id          bigserial PRIMARY KEY,
    alarm_id    bigint NOT NULL REFERENCES alarm (id),
    at_us       bigint NOT NULL,
    at          timestamptz GENERATED ALWAYS AS (to_timestamp(at_us / 1e6)) STORED,
    kind        text NOT NULL,
    actor       text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alarm_event_alarm ON alarm_event (alarm_id, id);
CREATE INDEX alarm_event_kind_at ON alarm_event (kind, at_us);
COMMENT ON TABLE alarm_event IS
    'Append-only audit log of every alarm transition (who, when, comment). The alarm row is a pure fold of these.';
COMMENT ON COLUMN alarm_event.kind IS
    'raised | updated | cleared | acked | shelved | unshelved | suppressed | unsuppressed | out_of_service | in_service | comment | escalated | notified | notify_failed | bureau_received | bureau_verified | bureau_feedback | bureau_closed';
COMMENT ON COLUMN alarm_event.actor IS 'Who: "system" or the API token name (user) that acted.';
COMMENT ON COLUMN alarm_event.data IS 'Kind-specific details (tier, value, limit, shelve until, recipient...).';

CREATE TABLE alarm_notification (
    id            bigserial PRIMARY KEY,
    enterprise_id text NOT NULL REFERENCES enterprise (id),
    alarm_id      bigint REFERENCES alarm (id),
    dedup_key     text NOT NULL UNIQUE,
    purpose       text NOT NULL,
    recipient     text NOT NULL,
    notifier      text NOT NULL,
    address       text NOT NULL,
    hazard_source text,
    tier          smallint,
    due_us        bigint NOT NULL,
    due_at        timestamptz GENERATED ALWAYS AS (to_timestamp(due_us / 1e6)) STORED,
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'sending', 'sent', 'cancelled', 'flooded', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    next_try_us   bigint NOT NULL,
    last_error    text,
    sent_at_us    bigint,
    message       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alarm_notification_due ON alarm_notification (next_try_us) WHERE status IN ('pending', 'sending');
CREATE INDEX alarm_notification_alarm ON alarm_notification (alarm_id);
COMMENT ON TABLE alarm_notification IS
    'Notification outbox: a row is written (with the alarm event) before anything is sent, marked sent after; pending rows survive a restart.';
COMMENT ON COLUMN alarm_notification.dedup_key IS 'Unique per alarm episode, escalation step, recipient and notifier: the same notification is never queued twice.';
COMMENT ON COLUMN alarm_notification.purpose IS 'escalation | repeat | flood_summary | bureau.';
COMMENT ON COLUMN alarm_notification.recipient IS
    'control_room | operational (操作负责人) | technical (技术负责人) | principal (主要负责人) | bureau_county | bureau_city | bureau_province.';
COMMENT ON COLUMN alarm_notification.notifier IS 'Name of the configured notifier (webhook, email, mqtt, sms).';
COMMENT ON COLUMN alarm_notification.address IS 'Where it goes: URL, e-mail address, MQTT topic or phone number.';
COMMENT ON COLUMN alarm_notification.status IS
    'pending (due at due_us) | sending (claimed; resent with the same delivery id after a crash) | sent | cancelled (acknowledged, shelved...) | flooded (folded into a flood summary) | dead (gave up; see alarm_dead_letter).';

CREATE TABLE alarm_dead_letter (
    id              bigserial PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES alarm_notification (id),
    notifier        text NOT NULL,
    address         text NOT NULL,
    attempts        integer NOT NULL,
    error           text NOT NULL,
    message         jsonb NOT NULL,
    at_us           bigint NOT NULL,
    at              timestamptz GENERATED ALWAYS AS (to_timestamp(at_us / 1e6)) STORED
);
COMMENT ON TABLE alarm_dead_letter IS 'Notifications that finally failed after every retry (or could not be retried).';

CREATE TABLE alarm_flood (
    id            bigserial PRIMARY KEY,
    enterprise_id text NOT NULL REFERENCES enterprise (id),
    started_us    bigint NOT NULL,
    started_at    timestamptz GENERATED ALWAYS AS (to_timestamp(started_us / 1e6)) STORED,
    last_us       bigint NOT NULL,
    ended_at      timestamptz GENERATED ALWAYS AS (to_timestamp(last_us / 1e6)) STORED,
    alarms        integer NOT NULL,
    UNIQUE (enterprise_id, started_us)
);
COMMENT ON TABLE alarm_flood IS
    'Alarm floods: more than ALARM_TARGETS.flood_count new alarms within flood_window_s at one plant (EEMUA 191). One summary message per flood.';

CREATE TABLE alarm_kpi_target (
    key         text PRIMARY KEY,
    value       double precision NOT NULL,
    source      text NOT NULL
);
COMMENT ON TABLE alarm_kpi_target IS
    'Alarm-load targets (hazmon.plant.standards.ALARM_TARGETS, ISA-18.2 / EEMUA 191), written by the alarm service on start for Grafana thresholds.';

-- KPIs for Grafana, computed from the event log (so they are right after a crash too).
CREATE VIEW alarm_kpi_hourly AS
SELECT a.enterprise_id,
       a.position,
       date_trunc('hour', e.at) AS hour,
       count(*)                                   AS alarms,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 4) AS red,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 3) AS orange,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 2) AS yellow,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 1) AS blue
FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
WHERE e.kind = 'raised'
GROUP BY 1, 2, 3;
COMMENT ON VIEW alarm_kpi_hourly IS
    'New alarms (activations) per plant, operator position and hour, with the tier (priority) mix. Compare alarms with alarm_kpi_target acceptable_per_hour / max_manageable_per_hour.';

CREATE VIEW alarm_kpi_standing AS
SELECT a.enterprise_id, a.position, a.id AS alarm_id, a.hazard_source, a.sensor, a.condition,
       a.tier_name, a.activated_at, now() - a.activated_at AS standing_for
FROM alarm a
WHERE a.active
  AND a.activated_at < now() - make_interval(secs => coalesce(
      (SELECT value FROM alarm_kpi_target WHERE key = 'standing_after_s'), 86400));
COMMENT ON VIEW alarm_kpi_standing IS 'Standing alarms: active for longer than standing_after_s (24 h).';

CREATE VIEW alarm_kpi_chattering AS
WITH r AS (
    SELECT a.enterprise_id, a.position, e.alarm_id, e.at_us,
           count(*) OVER (PARTITION BY e.alarm_id ORDER BY e.at_us
                          RANGE BETWEEN (coalesce((SELECT value FROM alarm_kpi_target
                                                   WHERE key = 'chattering_window_s'), 60) * 1e6)::bigint
                                PRECEDING AND CURRENT ROW) AS n
    FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
    WHERE e.kind = 'raised'
)
SELECT enterprise_id, position, date_trunc('hour', to_timestamp(at_us / 1e6)) AS hour,
       count(DISTINCT alarm_id) AS chattering_alarms
FROM r
WHERE n >= coalesce((SELECT value FROM alarm_kpi_target WHERE key = 'chattering_count'), 3)
GROUP BY 1, 2, 3;
COMMENT ON VIEW alarm_kpi_chattering IS
    'Chattering alarms per plant, position and hour: chattering_count or more activations within chattering_window_s.';

CREATE VIEW alarm_kpi_floods AS
SELECT enterprise_id, date_trunc('hour', started_at) AS hour, count(*) AS floods, sum(alarms) AS alarms_in_floods
FROM alarm_flood GROUP BY 1, 2;
COMMENT ON VIEW alarm_kpi_floods IS 'Alarm floods per plant and hour.';

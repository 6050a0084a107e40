-- The web console (hazmon.console): server-side sessions and the console's own audit trail.
-- A session row is looked up by the SHA-256 of the random id the browser holds in its cookie,
-- so a copy of this table signs nobody in. Actions on alarms and supervision records are
-- audited where they are recorded (alarm_event, hidden_danger_step, duty_check...) with the
-- user's name as actor; console_audit adds sign-ins, sign-outs and refusals.

CREATE TABLE console_session (
    id_sha256    text PRIMARY KEY,
    username     text NOT NULL,
    role         text NOT NULL CHECK (role IN ('operator', 'plant_manager', 'bureau')),
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    ended_at     timestamptz,
    end_reason   text
);
CREATE INDEX console_session_open ON console_session (username) WHERE ended_at IS NULL;
COMMENT ON TABLE console_session IS
    'Web console sessions: idle and absolute expiry are checked on every request; ended_at set at logout or expiry.';

CREATE TABLE console_audit (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    target    text NOT NULL DEFAULT '',
    detail    text NOT NULL DEFAULT '',
    remote    text NOT NULL DEFAULT ''
);
CREATE INDEX console_audit_at ON console_audit (at);
COMMENT ON TABLE console_audit IS
    'Who did what in the web console: sign-in (and refused ones), sign-out, refused forms, every action.';

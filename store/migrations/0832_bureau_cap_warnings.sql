-- Official weather warnings (CAP 1.2, GB/T 35965.1-2018) taken in by the bureau itself
-- (POST /api/v1/weather-warnings/cap): once each by identifier, the XML as received. With them the
-- bureau lists the enterprises of a warning's areas that have not reported their measures.

CREATE TABLE bureau_cap_warning (
    identifier    text PRIMARY KEY,
    sender        text NOT NULL,
    sent          timestamptz NOT NULL,
    status        text NOT NULL,
    msg_type      text NOT NULL,
    kind          text,
    colour        smallint CHECK (colour BETWEEN 1 AND 4),
    region_codes  text[] NOT NULL DEFAULT '{}',
    expires       timestamptz,
    xml           bytea NOT NULL,
    received_by   text NOT NULL,
    received_at   timestamptz NOT NULL
);
CREATE INDEX bureau_cap_warning_sent ON bureau_cap_warning (sent);
COMMENT ON TABLE bureau_cap_warning IS
    'CAP alerts, updates and cancellations the bureau took in itself, once each by identifier; the XML is the truth.';

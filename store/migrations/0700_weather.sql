-- Official weather warnings (hazmon.weather): CAP 1.2 alerts in the GB/T 35965.1-2018
-- profile, each stored once by its identifier with the XML as received, and the hazard
-- sources it concerns at the time it was ingested. Plain SQL: the same in both modes.

CREATE TABLE weather_warning (
    identifier   text PRIMARY KEY,
    sender       text NOT NULL,
    sent         timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('Actual', 'Exercise', 'System', 'Test', 'Draft')),
    msg_type     text NOT NULL CHECK (msg_type IN ('Alert', 'Update', 'Cancel', 'Ack', 'Error')),
    refs         text[] NOT NULL DEFAULT '{}',
    kind         text,
    colour       smallint CHECK (colour BETWEEN 1 AND 4),
    expires      timestamptz,
    flag         text NOT NULL DEFAULT '' CHECK (flag IN ('', 'unknown_reference')),
    xml          bytea NOT NULL,
    received_at  timestamptz NOT NULL
);
CREATE INDEX weather_warning_sent ON weather_warning (sent);
COMMENT ON TABLE weather_warning IS
    'CAP 1.2 alerts, updates and cancellations, once each by identifier; the XML is the truth.';
COMMENT ON COLUMN weather_warning.flag IS
    'unknown_reference: an Update or Cancel naming a warning never received (stored, has no effect on it).';

CREATE TABLE weather_effect (
    identifier     text NOT NULL REFERENCES weather_warning (identifier),
    enterprise_id  text NOT NULL REFERENCES enterprise (id),
    hazard_source  text NOT NULL,
    level          text NOT NULL,
    duties         text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (identifier, enterprise_id, hazard_source)
);
COMMENT ON TABLE weather_effect IS
    'Per hazard source: the advisory level and extra duties a warning has there (from the effects table).';

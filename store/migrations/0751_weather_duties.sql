-- Extra duties while a weather warning is in force (hazmon.weather): one task per hazard source,
-- warning kind and duty, to be confirmed with who and when; ended (recorded) when the warning
-- expires or is cancelled.

CREATE TABLE weather_duty (
    id             bigserial PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES enterprise (id),
    hazard_source  text NOT NULL,
    kind           text NOT NULL,
    duty           text NOT NULL,
    identifier     text NOT NULL,
    started_at     timestamptz NOT NULL,
    confirmed_by   text,
    confirmed_at   timestamptz,
    ended_at       timestamptz,
    end_reason     text
);
CREATE UNIQUE INDEX weather_duty_open ON weather_duty (enterprise_id, hazard_source, kind, duty)
    WHERE ended_at IS NULL;
COMMENT ON TABLE weather_duty IS
    'A duty (24h_duty, cooling_check...) to confirm while a weather warning kind is in force at a hazard source.';
COMMENT ON COLUMN weather_duty.identifier IS 'The warning that asked for it (the most severe in force when it started).';

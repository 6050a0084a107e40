-- Official weather warnings (CAP, GB/T 35965.1-2018) as the enterprises of the region report them
-- (hazmon.plant.link WeatherMeasures): per enterprise and warning, the hazard sources it concerns,
-- the duties it asks for there and who confirmed each and when, in force or ended. The newest
-- message (by the enterprise's seq) wins: an older one arriving late never rolls a row back.

CREATE TABLE bureau_weather_measures (
    enterprise_id   text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    identifier      text NOT NULL,
    seq             bigint NOT NULL,
    sender          text NOT NULL,
    sent            timestamptz NOT NULL,
    warning_kind    text NOT NULL,
    colour          text NOT NULL CHECK (colour IN ('red', 'orange', 'yellow', 'blue')),
    headline_zh     text NOT NULL DEFAULT '',
    headline_en     text NOT NULL DEFAULT '',
    region_codes    text[] NOT NULL DEFAULT '{}',
    hazard_sources  text[] NOT NULL DEFAULT '{}',
    state           text NOT NULL CHECK (state IN ('in_force', 'ended')),
    end_reason      text NOT NULL DEFAULT '',
    duties          jsonb NOT NULL DEFAULT '[]',
    duties_total    integer NOT NULL DEFAULT 0,
    duties_confirmed integer NOT NULL DEFAULT 0,
    at              timestamptz NOT NULL,
    PRIMARY KEY (enterprise_id, identifier)
);
CREATE INDEX bureau_weather_measures_identifier ON bureau_weather_measures (identifier);
COMMENT ON TABLE bureau_weather_measures IS
    'Per enterprise and official weather warning: its hazard sources, the duties asked and their confirmations (who, when), in force or ended.';
COMMENT ON COLUMN bureau_weather_measures.seq IS 'The envelope seq of the message the row shows (the newest wins).';
COMMENT ON COLUMN bureau_weather_measures.duties IS 'The duties as the enterprise reported them: id, hazard_source, duty, started_at, confirmed_by, confirmed_at, ended_at, end_reason.';

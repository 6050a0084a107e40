-- Registry of the plant file: enterprise, hazard sources, sensors. The daemon
-- upserts these from the plant file on start; sensor ids are stable by tag.
CREATE TABLE enterprise (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    name_en       text NOT NULL,
    province      text NOT NULL,
    city          text NOT NULL,
    county        text NOT NULL,
    region_code   char(6) NOT NULL CHECK (region_code ~ '^[1-9][0-9]{5}$'),
    locale        text NOT NULL DEFAULT 'zh',
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hazard_source (
    id              serial PRIMARY KEY,
    enterprise_id   text NOT NULL REFERENCES enterprise (id),
    code            text NOT NULL,          -- the id in the plant file
    name            text NOT NULL,
    kind            text NOT NULL,
    people_500m     integer NOT NULL,
    s_value         double precision NOT NULL,  -- Σ q/Q (GB 18218-2018)
    r_value         double precision NOT NULL,  -- α·Σ β q/Q
    grade           smallint CHECK (grade BETWEEN 1 AND 4),  -- NULL: not a major hazard source
    inventory       jsonb NOT NULL,         -- {"chlorine": 60.0, ...} design maximum, t
    responsible     jsonb NOT NULL,         -- the three 包保责任人
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enterprise_id, code)
);

CREATE TABLE sensor (
    id              serial PRIMARY KEY,
    enterprise_id   text NOT NULL REFERENCES enterprise (id),
    hazard_source_id integer NOT NULL REFERENCES hazard_source (id),
    tag             text NOT NULL,
    kind            text NOT NULL,
    unit            text NOT NULL,
    range_lo        double precision NOT NULL,
    range_hi        double precision NOT NULL,
    period_s        double precision NOT NULL,
    chemical        text,
    description     text NOT NULL DEFAULT '',
    is_key          boolean NOT NULL DEFAULT false,
    -- effective limits from the plant file / standards (assessment overrides live
    -- with the assessment record); Grafana draws them as thresholds
    hh              double precision,
    h               double precision,
    l               double precision,
    ll              double precision,
    retired         boolean NOT NULL DEFAULT false,  -- no longer in the plant file
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (enterprise_id, tag)
);

-- Assessment records (评估报告) and filing (备案).
CREATE TABLE assessment (
    id               serial PRIMARY KEY,
    hazard_source_id integer NOT NULL REFERENCES hazard_source (id),
    report_date      date NOT NULL,
    assessor         text NOT NULL,
    r_value          double precision NOT NULL,
    grade            smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
    filed_on         date,
    inventory        jsonb NOT NULL DEFAULT '{}',   -- chemical -> t, as assessed
    overrides        jsonb NOT NULL DEFAULT '{}',   -- tag -> limits agreed in the assessment
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL DEFAULT current_user
);
CREATE INDEX assessment_source_date ON assessment (hazard_source_id, report_date DESC);

CREATE TABLE hazmon_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

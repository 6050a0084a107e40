-- Supervision (hazmon.supervision): hidden dangers (隐患) with their append-only step log,
-- rectification plans (治理方案), attachments, responsible persons' duty checks (包保责任制)
-- and daily safety commitments (安全承诺). Plain SQL: the same in plain and TimescaleDB modes.
-- The step log is the truth; hidden_danger is its projection, written in the same transaction.

CREATE TABLE supervision_start (
    enterprise_id text PRIMARY KEY REFERENCES enterprise (id),
    started_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE supervision_start IS
    'When supervision began for an enterprise: duty periods and commitment days before it are not counted.';

CREATE TABLE hidden_danger (
    id             bigserial PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES enterprise (id),
    hazard_source  text,                 -- the plant file id; NULL: the whole enterprise
    title          text NOT NULL,
    level          text NOT NULL CHECK (level IN ('general', 'major')),
    found_by       text NOT NULL CHECK (found_by IN ('inspection', 'duty_check', 'expert', 'bureau', 'alarm')),
    criteria       smallint[] NOT NULL DEFAULT '{}',
    alarm_id       bigint REFERENCES alarm (id),
    duty_check_id  bigint,
    state          text NOT NULL CHECK (state IN ('found', 'plan', 'rectifying', 'applied', 'accepted')),
    deadline       date,
    found_at       timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    last_seq       integer NOT NULL,
    CHECK (level = 'general' OR cardinality(criteria) > 0)
);
CREATE INDEX hidden_danger_enterprise_state ON hidden_danger (enterprise_id, state);
CREATE INDEX hidden_danger_alarm ON hidden_danger (alarm_id) WHERE alarm_id IS NOT NULL;
COMMENT ON TABLE hidden_danger IS
    'Hidden-danger register (Order 16 of 2007): the projection of hidden_danger_step, one row per record.';
COMMENT ON COLUMN hidden_danger.criteria IS
    'Items (1-20) of 安监总管三〔2017〕121号 that make a major hidden danger major.';
COMMENT ON COLUMN hidden_danger.alarm_id IS 'The alarm it was raised from (the alarm -> hidden danger link is this index).';

CREATE TABLE hidden_danger_step (
    danger_id    bigint NOT NULL REFERENCES hidden_danger (id),
    seq          integer NOT NULL CHECK (seq >= 1),
    action       text NOT NULL
                 CHECK (action IN ('report', 'plan', 'start', 'apply', 'accept', 'reject', 'note', 'attach')),
    actor        text NOT NULL,
    role         text NOT NULL CHECK (role IN ('operator', 'plant_manager', 'bureau')),
    at           timestamptz NOT NULL,
    comment      text NOT NULL DEFAULT '',
    data         jsonb NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (danger_id, seq)
);
COMMENT ON TABLE hidden_danger_step IS
    'Append-only history of each hidden danger: who, role, when, comment. UPDATE and DELETE are refused.';

CREATE TABLE hidden_danger_plan (
    danger_id        bigint NOT NULL,
    seq              integer NOT NULL,
    goal             text NOT NULL,
    measures         text NOT NULL,
    funds_yuan       numeric(16, 2) CHECK (funds_yuan IS NULL OR funds_yuan > 0),
    materials        text NOT NULL,
    organisation     text NOT NULL,
    persons          text[] NOT NULL,
    deadline         date NOT NULL,
    safety_measures  text NOT NULL,
    contingency_plan text NOT NULL,
    signed_by        text NOT NULL,
    signed_at        timestamptz NOT NULL,
    PRIMARY KEY (danger_id, seq),
    FOREIGN KEY (danger_id, seq) REFERENCES hidden_danger_step (danger_id, seq)
);
COMMENT ON TABLE hidden_danger_plan IS
    'Every signed rectification plan (治理方案, Order 16: goal, measures, funds, organisation and persons, deadline, safety measures and contingency plan).';

CREATE TABLE hidden_danger_attachment (
    id            bigserial PRIMARY KEY,
    danger_id     bigint NOT NULL,
    seq           integer NOT NULL,
    filename      text NOT NULL,
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size          integer NOT NULL CHECK (size BETWEEN 1 AND 10485760),
    sha256        text NOT NULL,
    content       bytea NOT NULL,
    CHECK (octet_length(content) = size),
    FOREIGN KEY (danger_id, seq) REFERENCES hidden_danger_step (danger_id, seq)
);
CREATE INDEX hidden_danger_attachment_danger ON hidden_danger_attachment (danger_id);

CREATE TABLE duty_check (
    id             bigserial PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES enterprise (id),
    hazard_source  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('principal', 'technical', 'operational')),
    person         text NOT NULL,
    checked_at     timestamptz NOT NULL,
    what           text NOT NULL,
    findings       text NOT NULL DEFAULT '',
    recorded_by    text NOT NULL,
    recorded_role  text NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX duty_check_source_role ON duty_check (enterprise_id, hazard_source, role, checked_at DESC);
COMMENT ON TABLE duty_check IS
    'Checks by the responsible persons of each hazard source (包保责任制办法, 2021): principal, technical, operational.';

CREATE TABLE daily_commitment (
    id             bigserial PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES enterprise (id),
    day            date NOT NULL,
    committed_by   text NOT NULL,
    filed_at       timestamptz NOT NULL,
    sources        jsonb NOT NULL,   -- hazard source id -> running | stopped | maintenance
    special_work   jsonb NOT NULL DEFAULT '{}',   -- kind -> number under way
    note           text NOT NULL DEFAULT '',
    UNIQUE (enterprise_id, day)
);
COMMENT ON TABLE daily_commitment IS 'The daily safety commitment (安全承诺) of the enterprise, one per local day.';

CREATE TABLE supervision_told (
    enterprise_id  text NOT NULL REFERENCES enterprise (id),
    key            text NOT NULL,   -- hazard source|sensor|condition of the alarm
    active         boolean NOT NULL,
    episode        text NOT NULL,   -- the deadline / missed period / day it was raised for
    level          text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enterprise_id, key)
);
COMMENT ON TABLE supervision_told IS
    'What the alarms were last told by supervision_findings, so a restart raises nothing twice.';

CREATE FUNCTION supervision_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END $$;
CREATE TRIGGER hidden_danger_step_append_only BEFORE UPDATE OR DELETE ON hidden_danger_step
    FOR EACH ROW EXECUTE FUNCTION supervision_append_only();
CREATE TRIGGER hidden_danger_plan_append_only BEFORE UPDATE OR DELETE ON hidden_danger_plan
    FOR EACH ROW EXECUTE FUNCTION supervision_append_only();

-- A bureau's own emergency plans (应急预案, hazmon.bureau.plans; bureau.yaml `plans:`): each start,
-- level rise and end with who or what did it, and the checklist's steps confirmed with who and when.
-- A drill (演练) is a row like any other with drill = true, never counted as a real start.

CREATE TABLE bureau_own_plan_activation (
    id           bigserial PRIMARY KEY,
    plan_id      text NOT NULL,
    level        smallint NOT NULL CHECK (level BETWEEN 1 AND 4),
    drill        boolean NOT NULL DEFAULT false,
    started_at   timestamptz NOT NULL,
    started_by   text NOT NULL,
    cause        text NOT NULL,
    cause_since  timestamptz,
    clear_since  timestamptz,
    notified_at  timestamptz,
    ended_at     timestamptz,
    ended_by     text,
    end_reason   text
);
-- one open activation per plan (and one open drill): a start decided twice, or again after a restart,
-- is refused by the database
CREATE UNIQUE INDEX bureau_own_plan_open ON bureau_own_plan_activation (plan_id, drill) WHERE ended_at IS NULL;
COMMENT ON TABLE bureau_own_plan_activation IS
    'One row per start of a bureau''s own emergency plan: level (1 = I), who or what started it, when told, its end.';
COMMENT ON COLUMN bureau_own_plan_activation.started_by IS 'auto (a start condition) or the officer''s name (token or console user).';

CREATE TABLE bureau_own_plan_event (
    id             bigserial PRIMARY KEY,
    activation_id  bigint NOT NULL REFERENCES bureau_own_plan_activation (id),
    at             timestamptz NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('started', 'level', 'notified', 'ended')),
    actor          text NOT NULL,
    level          smallint,
    detail         text NOT NULL DEFAULT ''
);
CREATE INDEX bureau_own_plan_event_activation ON bureau_own_plan_event (activation_id, id);

CREATE TABLE bureau_own_plan_step (
    activation_id  bigint NOT NULL REFERENCES bureau_own_plan_activation (id),
    step_id        text NOT NULL,
    confirmed_by   text NOT NULL,
    confirmed_at   timestamptz NOT NULL,
    note           text NOT NULL DEFAULT '',
    PRIMARY KEY (activation_id, step_id)
);
COMMENT ON TABLE bureau_own_plan_step IS 'A checklist step of a bureau plan activation, confirmed once, with who and when.';

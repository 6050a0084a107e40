-- Emergency plans (应急预案, hazmon.weather.plans): each start of a plan, its level changes and
-- end, who or what did each, and the checklist's steps confirmed with who and when. Plain SQL:
-- the same in both modes. A drill (演练) is a row like any other with drill = true.

CREATE TABLE plan_activation (
    id             bigserial PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES enterprise (id),
    plan_id        text NOT NULL,
    level          smallint NOT NULL CHECK (level BETWEEN 1 AND 4),
    drill          boolean NOT NULL DEFAULT false,
    started_at     timestamptz NOT NULL,
    started_by     text NOT NULL,
    cause          text NOT NULL,
    cause_since    timestamptz,
    clear_since    timestamptz,
    notified_at    timestamptz,
    ended_at       timestamptz,
    ended_by       text,
    end_reason     text
);
-- one open activation per plan (and one open drill): a start decided twice, or again after a
-- restart, is refused by the database
CREATE UNIQUE INDEX plan_activation_open ON plan_activation (enterprise_id, plan_id, drill)
    WHERE ended_at IS NULL;
CREATE INDEX plan_activation_plan ON plan_activation (enterprise_id, plan_id, started_at);
COMMENT ON TABLE plan_activation IS
    'One row per start of an emergency plan: level (1 = I, most severe), who or what started it, when it was told, its end.';
COMMENT ON COLUMN plan_activation.started_by IS 'auto (a start condition) or "<name> (<role>)" for a start by hand.';
COMMENT ON COLUMN plan_activation.cause IS 'The start condition that held (or the manual start), in words.';
COMMENT ON COLUMN plan_activation.cause_since IS 'Since when the causing condition held (a condition older than the last end does not start the plan again).';
COMMENT ON COLUMN plan_activation.clear_since IS 'Since when no start condition holds (NULL while one does); ends the plan after end.clear_for_min.';
COMMENT ON COLUMN plan_activation.notified_at IS 'When the start notifications were handed to the notifiers (NULL: not yet; retried after a restart).';

CREATE TABLE plan_event (
    id             bigserial PRIMARY KEY,
    activation_id  bigint NOT NULL REFERENCES plan_activation (id),
    at             timestamptz NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('started', 'level', 'notified', 'ended')),
    actor          text NOT NULL,
    level          smallint,
    detail         text NOT NULL DEFAULT ''
);
CREATE INDEX plan_event_activation ON plan_event (activation_id, id);
COMMENT ON TABLE plan_event IS 'Append-only log of each plan activation: started, level changes, notifications, end.';

CREATE TABLE plan_step (
    activation_id  bigint NOT NULL REFERENCES plan_activation (id),
    step_id        text NOT NULL,
    confirmed_by   text NOT NULL,
    role           text NOT NULL,
    confirmed_at   timestamptz NOT NULL,
    note           text NOT NULL DEFAULT '',
    PRIMARY KEY (activation_id, step_id)
);
COMMENT ON TABLE plan_step IS 'A checklist step of a plan activation, confirmed once, with who and when.';

-- Emergency plans (应急预案) started at the enterprises of the region, from their plan_event
-- messages (hazmon.plant.link PlanEvent): one row per activation, its level and whether it has
-- ended. A drill (演练) is kept with drill = true: the bureau sees it, never as a real start.

CREATE TABLE bureau_plan (
    enterprise_id  text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    activation     bigint NOT NULL,
    plan_id        text NOT NULL,
    plan_name      text NOT NULL,
    level          text NOT NULL CHECK (level IN ('I', 'II', 'III', 'IV')),
    drill          boolean NOT NULL,
    started_at     timestamptz NOT NULL,
    started_by     text NOT NULL,
    cause          text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    PRIMARY KEY (enterprise_id, activation)
);
CREATE INDEX bureau_plan_open ON bureau_plan (started_at DESC) WHERE ended_at IS NULL;
COMMENT ON TABLE bureau_plan IS
    'Emergency plans started at the enterprises: level (I-IV, raised as the enterprise raises it), who or what started it, drill or real, ended.';

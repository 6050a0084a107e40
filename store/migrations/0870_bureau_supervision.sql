-- Supervision at the bureau (hazmon.bureau.supervision_*): what the enterprises report of their
-- hidden dangers (隐患, hazmon.plant.link HiddenDanger), responsible persons' checks (包保责任人
-- DutyCheckReport) and daily commitments (安全承诺 CommitmentReport), and the bureau's own
-- supervised rectification (挂牌督办) with its history and the enterprises' progress reports.
-- Every row comes from a message stored once in bureau_message (or a bureau step); plain SQL.

-- A hidden danger as it stands after the newest step received; danger_id is the enterprise's
-- '<enterprise>:<id>' (the same id end to end).
CREATE TABLE bureau_hidden_danger (
    danger_id      text PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    hazard_source  text,                 -- NULL: the whole enterprise
    unit           text NOT NULL DEFAULT '',
    sensor         text,
    equipment      text,
    title          text NOT NULL,        -- what was found
    description    text NOT NULL DEFAULT '',
    found_by       text NOT NULL,        -- inspection | duty_check | expert | bureau | alarm
    alarm_id       text,                 -- '<enterprise>:<alarm id>' when raised from an alarm
    level          text NOT NULL CHECK (level IN ('general', 'major')),
    criteria       smallint[] NOT NULL DEFAULT '{}',
    state          text NOT NULL CHECK (state IN ('found', 'plan', 'rectifying', 'applied', 'accepted')),
    plan           jsonb,                -- the signed plan (五落实) in force
    deadline       date,
    found_at       timestamptz NOT NULL,
    rectified_at   timestamptz,          -- when accepted (销号) at the enterprise
    last_seq       integer NOT NULL,     -- the newest step applied (an older one never rolls it back)
    updated_at     timestamptz NOT NULL
);
CREATE INDEX bureau_hidden_danger_enterprise ON bureau_hidden_danger (enterprise_id, found_at DESC);
CREATE INDEX bureau_hidden_danger_open ON bureau_hidden_danger (level, found_at) WHERE state <> 'accepted';
COMMENT ON TABLE bureau_hidden_danger IS
    'Hidden dangers of the region''s enterprises (Order 16 of 2007), as of the newest step received.';

CREATE TABLE bureau_hidden_danger_step (
    danger_id   text NOT NULL REFERENCES bureau_hidden_danger (danger_id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    step        text NOT NULL,           -- report | plan | start | apply | accept | reject | note | attach
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    role        text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    state_after text NOT NULL,
    message_id  uuid NOT NULL,
    PRIMARY KEY (danger_id, seq)
);
COMMENT ON TABLE bureau_hidden_danger_step IS 'Each hidden danger''s history as the enterprise recorded it: who, role, when, comment.';

CREATE TABLE bureau_duty_check (
    enterprise_id  text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    check_id       bigint NOT NULL,      -- the enterprise's duty_check.id
    hazard_source  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('principal', 'technical', 'operational')),
    person         text NOT NULL,
    checked_at     timestamptz NOT NULL,
    what           text NOT NULL,
    findings       text NOT NULL DEFAULT '',
    recorded_by    text NOT NULL DEFAULT '',
    message_id     uuid NOT NULL,
    PRIMARY KEY (enterprise_id, check_id)
);
CREATE INDEX bureau_duty_check_source ON bureau_duty_check (enterprise_id, hazard_source, role, checked_at DESC);
COMMENT ON TABLE bureau_duty_check IS
    'Checks by each hazard source''s responsible persons (包保责任人: 主要负责人 principal, 技术负责人 technical, 操作负责人 operational).';

CREATE TABLE bureau_commitment (
    enterprise_id  text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    day            date NOT NULL,        -- the enterprise's local day
    commitment_id  bigint NOT NULL,
    sources        jsonb NOT NULL,       -- hazard source -> running | stopped | maintenance
    special_work   jsonb NOT NULL DEFAULT '{}',
    filed_by       text NOT NULL,
    filed_at       timestamptz NOT NULL,
    note           text NOT NULL DEFAULT '',
    message_id     uuid NOT NULL,
    PRIMARY KEY (enterprise_id, day)
);
COMMENT ON TABLE bureau_commitment IS 'Daily safety commitments (安全承诺), one per enterprise and local day.';

-- 挂牌督办: a supervision of one major hidden danger (or of an enterprise as a whole).
CREATE TABLE bureau_supervision (
    id             bigserial PRIMARY KEY,
    enterprise_id  text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    danger_id      text REFERENCES bureau_hidden_danger (danger_id) ON DELETE CASCADE,
    region_code    char(6) NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    title          text NOT NULL DEFAULT '',
    level          text NOT NULL CHECK (level IN ('county', 'city', 'province')),
    opened_level   text NOT NULL CHECK (opened_level IN ('county', 'city', 'province')),
    state          text NOT NULL CHECK (state IN ('open', 'progress_requested', 'accepted', 'closed')),
    deadline       date NOT NULL,
    bureau_person  text NOT NULL,
    opened_at      timestamptz NOT NULL,
    opened_by      text NOT NULL,
    escalated_at   timestamptz,          -- set once: the deadline passed, the next level up supervises
    closed_at      timestamptz,
    updated_at     timestamptz NOT NULL,
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);
-- one open supervision per hidden danger
CREATE UNIQUE INDEX bureau_supervision_one_per_danger ON bureau_supervision (danger_id)
    WHERE state <> 'closed' AND danger_id IS NOT NULL;
CREATE INDEX bureau_supervision_region ON bureau_supervision (region_code, opened_at DESC);
CREATE INDEX bureau_supervision_due ON bureau_supervision (deadline) WHERE state <> 'closed' AND escalated_at IS NULL;
COMMENT ON TABLE bureau_supervision IS
    'Supervised rectification (挂牌督办) by the bureau: level county/city/province, deadline, person in charge; escalated once when overdue.';

CREATE TABLE bureau_supervision_event (
    id              bigserial PRIMARY KEY,
    supervision_id  bigint NOT NULL REFERENCES bureau_supervision (id) ON DELETE CASCADE,
    step            text NOT NULL CHECK (step IN ('opened', 'progress', 'progress_requested', 'accepted', 'closed', 'escalated')),
    at              timestamptz NOT NULL,
    actor           text NOT NULL,
    origin          text NOT NULL CHECK (origin IN ('bureau', 'enterprise')),
    comment         text NOT NULL DEFAULT '',
    level           text NOT NULL,        -- the level supervising after this step
    deadline        date NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    message_id      uuid                  -- the enterprise's progress message (origin enterprise)
);
CREATE INDEX bureau_supervision_event_supervision ON bureau_supervision_event (supervision_id, id);
CREATE UNIQUE INDEX bureau_supervision_event_message ON bureau_supervision_event (message_id) WHERE message_id IS NOT NULL;
-- the automatic escalation happens once per supervision, whatever races
CREATE UNIQUE INDEX bureau_supervision_escalated_once ON bureau_supervision_event (supervision_id) WHERE step = 'escalated';
COMMENT ON TABLE bureau_supervision_event IS
    'History of a supervision: opened, progress (from the enterprise), progress_requested, accepted, closed (销号), escalated.';

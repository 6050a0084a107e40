-- Supervision over the bureau link (hazmon/supervision_link.py): the bureau's supervised
-- rectification (挂牌督办) as received at the plant, and the enterprise's progress reports on it.
-- What goes up is read from the supervision tables and enqueued once (uplink_outbox.dedupe_key).

CREATE TABLE supervision_notice (
    id              bigserial PRIMARY KEY,
    enterprise_id   text NOT NULL REFERENCES enterprise (id),
    message_id      uuid NOT NULL UNIQUE,   -- the bureau's envelope: a redelivery is recorded once
    supervision_id  bigint NOT NULL,        -- the bureau's id
    danger_id       bigint REFERENCES hidden_danger (id),   -- NULL: the enterprise as a whole
    action          text NOT NULL CHECK (action IN ('opened', 'progress_requested', 'accepted', 'closed', 'escalated')),
    level           text NOT NULL CHECK (level IN ('county', 'city', 'province')),
    deadline        date NOT NULL,
    bureau_person   text NOT NULL,
    title           text NOT NULL DEFAULT '',
    actor           text NOT NULL,
    at              timestamptz NOT NULL,
    comment         text NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX supervision_notice_supervision ON supervision_notice (enterprise_id, supervision_id, id);
COMMENT ON TABLE supervision_notice IS
    'Steps of the bureau''s supervised rectification (挂牌督办) received from the bureau, in order.';

CREATE TABLE supervision_progress (
    id              bigserial PRIMARY KEY,
    enterprise_id   text NOT NULL REFERENCES enterprise (id),
    supervision_id  bigint NOT NULL,
    danger_id       bigint REFERENCES hidden_danger (id),
    actor           text NOT NULL,
    at              timestamptz NOT NULL,
    comment         text NOT NULL CHECK (comment <> ''),
    done            boolean NOT NULL DEFAULT false
);
CREATE INDEX supervision_progress_supervision ON supervision_progress (enterprise_id, supervision_id, id);
COMMENT ON TABLE supervision_progress IS
    'The enterprise''s progress reports on a supervision (督办进展), sent up to the bureau.';

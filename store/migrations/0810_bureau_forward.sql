-- Federation (hazmon.bureau.forward): a bureau with a `parent:` forwards every message it stored
-- (first time by message_id) to its parent bureau (province -> nation). The message waits here,
-- enqueued in the transaction that stored it, until the parent's broker acknowledged it (PUBACK),
-- so an outage of the parent or its broker loses nothing and the replay goes out in order.
-- Plain SQL: the same in plain and TimescaleDB modes.

CREATE TABLE bureau_forward (
    seq           bigserial PRIMARY KEY,
    message_id    uuid NOT NULL UNIQUE,
    enterprise_id text NOT NULL,
    kind          text NOT NULL,
    body          bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    attempts      integer NOT NULL DEFAULT 0
);
CREATE INDEX bureau_forward_unsent ON bureau_forward (seq) WHERE sent_at IS NULL;
COMMENT ON TABLE bureau_forward IS
    'Messages stored here, to forward unchanged to the parent bureau, in send order; sent once its broker acknowledged it.';
COMMENT ON COLUMN bureau_forward.seq IS 'Send order (the order they were stored here); the envelope keeps its own seq.';
COMMENT ON COLUMN bureau_forward.message_id IS 'The envelope''s message_id, unchanged: the parent stores it once.';
COMMENT ON COLUMN bureau_forward.body IS 'The envelope exactly as the enterprise sent it (JSON bytes).';
COMMENT ON COLUMN bureau_forward.sent_at IS 'When the parent''s broker acknowledged it (PUBACK); NULL: still to send.';
COMMENT ON COLUMN bureau_forward.attempts IS 'How many times it was published without an acknowledgement yet (replays are counted).';

-- The bureau's downlink (hazmon.bureau): what the bureau sends an enterprise (its steps on an
-- alarm, hazmon.plant.link BureauStep) waits here until the broker acknowledged it (PUBACK), so a
-- broker outage loses nothing; the step is enqueued in the transaction that records it.
-- Plain SQL: the same in plain and TimescaleDB modes.

CREATE TABLE bureau_downlink (
    seq           bigserial PRIMARY KEY,
    message_id    uuid NOT NULL UNIQUE,
    enterprise_id text NOT NULL REFERENCES bureau_enterprise (enterprise_id) ON DELETE CASCADE,
    region_code   char(6) NOT NULL,
    kind          text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    attempts      integer NOT NULL DEFAULT 0
);
CREATE INDEX bureau_downlink_unsent ON bureau_downlink (seq) WHERE sent_at IS NULL;
COMMENT ON TABLE bureau_downlink IS
    'Messages to enterprises (hazmon.plant.link, direction down), in send order; a row is sent once the broker acknowledged it.';
COMMENT ON COLUMN bureau_downlink.seq IS 'Send order; the envelope''s seq (increasing for every enterprise).';
COMMENT ON COLUMN bureau_downlink.message_id IS 'The envelope''s message_id: a replay resends the same id.';
COMMENT ON COLUMN bureau_downlink.sent_at IS 'When the broker acknowledged it (PUBACK); NULL: still to send.';

-- Uplink (hazmon.uplink): what the enterprise reports to its bureau waits here until the
-- broker acknowledges it (PUBACK), so a bureau or broker outage loses nothing and the
-- replay goes out in order. Plain SQL: the same in plain and TimescaleDB modes.

CREATE TABLE uplink_outbox (
    seq           bigserial PRIMARY KEY,
    message_id    uuid NOT NULL UNIQUE,
    enterprise_id text NOT NULL REFERENCES enterprise (id),
    region_code   char(6) NOT NULL,
    kind          text NOT NULL,
    payload       jsonb NOT NULL,
    dedupe_key    text UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    attempts      integer NOT NULL DEFAULT 0
);
CREATE INDEX uplink_outbox_unsent ON uplink_outbox (seq) WHERE sent_at IS NULL;
COMMENT ON TABLE uplink_outbox IS
    'Messages to the bureau (hazmon.plant.link), in send order; a row is sent once the broker acknowledged it.';
COMMENT ON COLUMN uplink_outbox.seq IS 'Send order; the envelope''s seq (enterprise-scoped, increasing).';
COMMENT ON COLUMN uplink_outbox.message_id IS 'The envelope''s message_id: a replay resends the same id, the bureau stores it once.';
COMMENT ON COLUMN uplink_outbox.payload IS 'The payload (hazmon.plant.link.messages), validated before it was enqueued.';
COMMENT ON COLUMN uplink_outbox.dedupe_key IS 'What the message is about (alarm_event:<id>): enqueuing it again adds no row.';
COMMENT ON COLUMN uplink_outbox.sent_at IS 'When the broker acknowledged it (PUBACK); NULL: still to send.';
COMMENT ON COLUMN uplink_outbox.attempts IS 'How many times it was published without an acknowledgement yet (replays are counted).';

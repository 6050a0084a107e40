-- Collector dead letters: every payload (or batch entry) that did not become a
-- reading, kept for inspection with the reason it was refused. Written by the
-- daemon's batch writer; `reason` is one of hazmon.collector.payload.REASONS.
CREATE TABLE collector_dead_letter (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    source      text NOT NULL,          -- MQTT broker or OPC UA endpoint name
    topic       text NOT NULL,          -- MQTT topic or OPC UA node id
    reason      text NOT NULL,
    detail      text NOT NULL,
    tag         text,                   -- the sensor, when known
    payload     bytea NOT NULL,         -- the message body, cut at the configured size
    payload_len integer NOT NULL        -- the full body's length in bytes
);
CREATE INDEX collector_dead_letter_time ON collector_dead_letter (received_at);
CREATE INDEX collector_dead_letter_reason ON collector_dead_letter (reason, received_at);

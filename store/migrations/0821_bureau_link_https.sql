-- The link over HTTPS (hazmon.bureau.http_link): an enterprise polls its down messages
-- (GET /api/v1/link/<enterprise>/down?after=<seq>) from the outbox bureau_downlink. Its poll with
-- after=N says every message up to seq N was handled at the plant: that is what marks a down
-- message delivered over HTTPS (bureau_downlink.sent_at stays the broker's PUBACK).
-- Plain SQL: the same in plain and TimescaleDB modes.

CREATE TABLE bureau_link_https_cursor (
    enterprise_id  text PRIMARY KEY,
    delivered_seq  bigint NOT NULL DEFAULT 0,
    delivered_at   timestamptz,
    polled_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE bureau_link_https_cursor IS
    'Per enterprise on the HTTPS link: the down messages (bureau_downlink.seq) it confirmed handled, by polling after them.';
COMMENT ON COLUMN bureau_link_https_cursor.delivered_seq IS
    'Every message of this enterprise with seq <= delivered_seq is delivered (handled at the plant).';

-- Notices to the bureau's staff (notify: recipients of the region) when a supervision (挂牌督办) is
-- escalated because its deadline passed: one row per escalation and recipient, sent once
-- (notified_at), retried with backoff like the warnings' notices (hazmon/bureau_notify.py).

CREATE TABLE bureau_supervision_notice (
    event_id        bigint NOT NULL REFERENCES bureau_supervision_event (id) ON DELETE CASCADE,
    recipient       text NOT NULL,
    created_at      timestamptz NOT NULL,
    next_at         timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    notified_at     timestamptz,
    gave_up_at      timestamptz,
    last_error      text NOT NULL DEFAULT '',
    PRIMARY KEY (event_id, recipient)
);
CREATE INDEX bureau_supervision_notice_due ON bureau_supervision_notice (next_at)
    WHERE notified_at IS NULL AND gave_up_at IS NULL;
COMMENT ON TABLE bureau_supervision_notice IS
    'An escalated supervision told to a recipient of notify: (e-mail, webhook, MQTT); sent once: notified_at.';

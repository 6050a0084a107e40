-- Notices of bureau warnings to the bureau's own staff (hazmon.bureau.warning_notices): one row per
-- warning and recipient of the bureau config's notify: section. notified_at is set once the
-- channel accepted it, so a restart never sends a warning twice; a failure is retried with backoff
-- (next_at) until the attempts are used up (gave_up_at), every failure counted with its error.

CREATE TABLE bureau_warning_notice (
    warning_id  bigint NOT NULL REFERENCES bureau_warning (id) ON DELETE CASCADE,
    recipient   text NOT NULL,
    colour      smallint NOT NULL,
    created_at  timestamptz NOT NULL,
    next_at     timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    notified_at timestamptz,
    gave_up_at  timestamptz,
    last_error  text NOT NULL DEFAULT '',
    PRIMARY KEY (warning_id, recipient)
);
CREATE INDEX bureau_warning_notice_due ON bureau_warning_notice (colour DESC, next_at)
    WHERE notified_at IS NULL AND gave_up_at IS NULL;
COMMENT ON TABLE bureau_warning_notice IS
    'A new bureau warning told to a recipient of notify: (e-mail, webhook, MQTT); sent once: notified_at.';
COMMENT ON COLUMN bureau_warning_notice.next_at IS
    'When it is tried next (a claim moves it ahead by a lease, so two workers never send it at once).';

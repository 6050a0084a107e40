-- The bureau's dead letters can be replayed (hazmon.bureau.flood.replay, `hazmon bureau dead-letters
-- replay --reason flood`): a message refused for a flood is kept whole and put through the ingest
-- again later, once. Plain SQL: the same in plain and TimescaleDB modes.

ALTER TABLE bureau_dead_letter ADD COLUMN replayed_at timestamptz;
ALTER TABLE bureau_dead_letter ADD COLUMN replay_outcome text;
CREATE INDEX bureau_dead_letter_to_replay ON bureau_dead_letter (reason_code, id) WHERE replayed_at IS NULL;
COMMENT ON COLUMN bureau_dead_letter.payload IS
    'The raw bytes: whole for reason_code flood (they are replayed), cut at 64 KiB otherwise.';
COMMENT ON COLUMN bureau_dead_letter.replayed_at IS
    'When it was put through the ingest again (NULL: not replayed); replay_outcome says what became of it.';
COMMENT ON COLUMN bureau_dead_letter.replay_outcome IS
    'stored, duplicate (its message_id was stored before) or refused:<reason_code> (a new dead letter).';

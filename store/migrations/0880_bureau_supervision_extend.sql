-- Supervision (挂牌督办) at the bureau, second part (hazmon.bureau.supervision_flow):
-- * extended (延期): the level supervising sets a later deadline; escalation then counts from it;
-- * escalation once per deadline (was: once per supervision), so a supervision escalated from
--   county to city goes up to the province if its new deadline passes too; at the province
--   (no level above) the escalation keeps the level and is flagged (no_level_above_at).

ALTER TABLE bureau_supervision_event DROP CONSTRAINT bureau_supervision_event_step_check;
ALTER TABLE bureau_supervision_event ADD CONSTRAINT bureau_supervision_event_step_check
    CHECK (step IN ('opened', 'progress', 'progress_requested', 'accepted', 'closed', 'escalated', 'extended'));

DROP INDEX bureau_supervision_escalated_once;
-- the automatic escalation happens once per supervision and deadline, whatever races
CREATE UNIQUE INDEX bureau_supervision_escalated_once_per_deadline
    ON bureau_supervision_event (supervision_id, deadline) WHERE step = 'escalated';

ALTER TABLE bureau_supervision
    ADD COLUMN escalated_deadline date,          -- the deadline the last escalation was for
    ADD COLUMN no_level_above_at timestamptz;    -- escalated at the top level (province): flagged
-- before this migration a deadline never changed: an escalated supervision was escalated for it
UPDATE bureau_supervision SET escalated_deadline = deadline WHERE escalated_at IS NOT NULL;
UPDATE bureau_supervision SET no_level_above_at = escalated_at
    WHERE escalated_at IS NOT NULL AND level = 'province' AND opened_level = 'province';

DROP INDEX bureau_supervision_due;
CREATE INDEX bureau_supervision_due ON bureau_supervision (deadline)
    WHERE state IN ('open', 'progress_requested');

COMMENT ON COLUMN bureau_supervision.escalated_at IS 'The first escalation (the deadline passed).';
COMMENT ON COLUMN bureau_supervision.no_level_above_at IS
    'Overdue at province level: no level above to escalate to (cleared by an extension).';

-- The bureau's supervision (挂牌督办) received at the plant: the step 'extended' (延期, a later
-- deadline set by the level supervising) joins the actions kept (hazmon.supervision.bureau).
ALTER TABLE supervision_notice DROP CONSTRAINT supervision_notice_action_check;
ALTER TABLE supervision_notice ADD CONSTRAINT supervision_notice_action_check
    CHECK (action IN ('opened', 'progress_requested', 'accepted', 'closed', 'escalated', 'extended'));
ALTER TABLE supervision_notice ADD COLUMN previous_deadline date;   -- extended: the deadline before

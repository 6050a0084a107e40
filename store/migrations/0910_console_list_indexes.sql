-- The bureau console's long lists (hazmon.bureau.listing) page newest first with the id as
-- tie-breaker; these indexes serve that order so a page of 50 out of tens of thousands is read
-- from the index, not sorted from the whole table. Enterprises page by their primary key.
CREATE INDEX bureau_alarm_newest ON bureau_alarm (raised_at DESC, alarm_id);
CREATE INDEX bureau_warning_newest ON bureau_warning (raised_at DESC, id DESC);

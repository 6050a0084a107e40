-- tier_changed: an active alarm took a new tier because its hazard source's grade (or
-- assessment status) changed; data: tier, from_tier, grade, reason.
COMMENT ON COLUMN alarm_event.kind IS
    'raised | updated | tier_changed | cleared | acked | shelved | unshelved | suppressed | unsuppressed | out_of_service | in_service | comment | escalated | notified | notify_failed | bureau_received | bureau_verified | bureau_feedback | bureau_closed';

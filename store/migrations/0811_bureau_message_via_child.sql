-- Federation, the parent's view of its children (GET /api/v1/children, hazmon.bureau.children_api):
-- which child bureau forwarded each message stored here. NULL: the enterprise sent it to this
-- bureau itself (hazmon/v1/<enterprise>/up/...); a child's username: it came on
-- hazmon/v1/fed/<child>/... . A message that came both ways is stored once, with the way it came first.
-- Plain SQL: the same in plain and TimescaleDB modes.

ALTER TABLE bureau_message ADD COLUMN via_child text;
CREATE INDEX bureau_message_via_child ON bureau_message (via_child, received_at) INCLUDE (enterprise_id)
    WHERE via_child IS NOT NULL;
COMMENT ON COLUMN bureau_message.via_child IS
    'The child bureau (its username at this broker, children: in bureau.yaml) that forwarded it; NULL: sent here directly.';

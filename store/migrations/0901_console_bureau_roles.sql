-- The bureau daemon serves the console too (hazmon.console.bureau_pages): its users have the
-- roles of the bureau API, viewer and officer, besides the plant's operator, plant_manager, bureau.
ALTER TABLE console_session DROP CONSTRAINT IF EXISTS console_session_role_check;
ALTER TABLE console_session ADD CONSTRAINT console_session_role_check
    CHECK (role IN ('operator', 'plant_manager', 'bureau', 'viewer', 'officer'));

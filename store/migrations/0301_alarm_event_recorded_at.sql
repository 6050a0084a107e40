-- recorded_at: when the event row was written (clock_timestamp), not when its
-- transaction began (now()); bench/alarm_latency.py splits the latency with it.
ALTER TABLE alarm_event ALTER COLUMN recorded_at SET DEFAULT clock_timestamp();
COMMENT ON COLUMN alarm_event.recorded_at IS 'Wall-clock time the event row was written (clock_timestamp()).';

-- One cause, one alarm (hazmon.alarms.causes): the stale alarms of the sensors behind a
-- lost link are its consequences, raised with data.cause ('link_lost:<source>') and never
-- annunciated. Alarm-load KPIs count annunciated alarms only (ISA-18.2 / EEMUA 191 alarm
-- rates), so these views leave consequences out. detector_lost / detector_back: the
-- detector of an active alarm stopped / resumed reporting (the alarm escalates on);
-- consequence: an active alarm turned out to be the consequence of another.
COMMENT ON COLUMN alarm_event.kind IS
    'raised | updated | tier_changed | cleared | acked | shelved | unshelved | suppressed | unsuppressed | detector_lost | detector_back | consequence | out_of_service | in_service | comment | escalated | notified | notify_failed | bureau_received | bureau_verified | bureau_feedback | bureau_closed';
COMMENT ON COLUMN alarm_event.data IS
    'Kind-specific details (tier, value, limit, shelve until, recipient...); raised / consequence: cause when the alarm is the consequence of another (not annunciated); detector_lost: fault.';

CREATE OR REPLACE VIEW alarm_kpi_hourly AS
SELECT a.enterprise_id,
       a.position,
       date_trunc('hour', e.at) AS hour,
       count(*)                                   AS alarms,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 4) AS red,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 3) AS orange,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 2) AS yellow,
       count(*) FILTER (WHERE (e.data ->> 'tier')::int = 1) AS blue
FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
WHERE e.kind = 'raised' AND NOT e.data ? 'cause'
GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW alarm_kpi_standing AS
SELECT a.enterprise_id, a.position, a.id AS alarm_id, a.hazard_source, a.sensor, a.condition,
       a.tier_name, a.activated_at, now() - a.activated_at AS standing_for
FROM alarm a
WHERE a.active
  AND coalesce(a.folded ->> 'cause', '') = ''
  AND a.activated_at < now() - make_interval(secs => coalesce(
      (SELECT value FROM alarm_kpi_target WHERE key = 'standing_after_s'), 86400));

CREATE OR REPLACE VIEW alarm_kpi_chattering AS
WITH r AS (
    SELECT a.enterprise_id, a.position, e.alarm_id, e.at_us,
           count(*) OVER (PARTITION BY e.alarm_id ORDER BY e.at_us
                          RANGE BETWEEN (coalesce((SELECT value FROM alarm_kpi_target
                                                   WHERE key = 'chattering_window_s'), 60) * 1e6)::bigint
                                PRECEDING AND CURRENT ROW) AS n
    FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
    WHERE e.kind = 'raised' AND NOT e.data ? 'cause'
)
SELECT enterprise_id, position, date_trunc('hour', to_timestamp(at_us / 1e6)) AS hour,
       count(DISTINCT alarm_id) AS chattering_alarms
FROM r
WHERE n >= coalesce((SELECT value FROM alarm_kpi_target WHERE key = 'chattering_count'), 3)
GROUP BY 1, 2, 3;

-- A maintained hourly alarm-KPI rollup (issue 13: every panel < 200 ms at 30 days with a year
-- of alarm history). alarm_kpi_hour holds, per plant, operator position and UTC hour, exactly
-- the rows of alarm_kpi_hourly and alarm_kpi_chattering (as 0303 defined them): the annunciated
-- activations (kind 'raised' without data.cause) with their tier mix, and the chattering alarms
-- (chattering_count or more activations within chattering_window_s, alarm_kpi_target).
--
-- Who keeps it: triggers on alarm_event, in the transaction that writes the events, so it is
-- never behind: the current hour is current, and an event arriving late (for an hour rolled up
-- long ago: a replay, a backfill) rewrites its hour in the same commit. A bucket is only ever
-- written whole: every hour an event touches is recomputed from all of that hour's events
-- (deleted and inserted again), never incremented. An activation also changes the chattering
-- count of the activations up to chattering_window_s after it, so the hours up to that far
-- ahead are recomputed too. Deleting or changing events (retention, a correction) recomputes
-- their hours the same way; changing an alarm's plant or position recomputes its hours;
-- changing chattering_count / chattering_window_s recomputes everything.
--
-- Concurrency: recomputing takes one transaction-level advisory lock, so two transactions
-- writing activations one after the other; the second recomputes after the first committed
-- and sees its events (each statement of the trigger reads with a new snapshot: READ
-- COMMITTED, the default isolation, which the alarm service uses). Only statements that write
-- activations ('raised') take the lock; acknowledgements, notifications... do not.
--
-- Safety: the alarm write must never fail because of a KPI. If recomputing an hour fails (a
-- malformed data.tier, say), the event is still written, a WARNING is logged, and the hours
-- are listed in alarm_kpi_hour_stale; the panel functions then compute those hours from the
-- raw events (as 0304 did) until alarm_kpi_hour_repair() or the next event of the hour
-- recomputes them.
--
-- Hours are UTC hours (at_us / 3600 s): the views' date_trunc('hour', at) is the same hour in
-- every time zone whose offset is a whole number of hours (China: UTC+8).
-- Plain tables, functions and triggers only: the same on plain PostgreSQL and TimescaleDB.

CREATE TABLE alarm_kpi_hour (
    enterprise_id     text NOT NULL,
    "position"        text NOT NULL,
    hour              timestamptz NOT NULL,
    alarms            bigint NOT NULL,
    red               bigint NOT NULL,
    orange            bigint NOT NULL,
    yellow            bigint NOT NULL,
    blue              bigint NOT NULL,
    chattering_alarms bigint NOT NULL,
    PRIMARY KEY (hour, enterprise_id, "position")
);
COMMENT ON TABLE alarm_kpi_hour IS
    'Hourly alarm KPIs per plant and operator position (alarm_kpi_hourly + alarm_kpi_chattering rows), kept whole and current by triggers on alarm_event; read by alarm_kpi_hourly_in / alarm_kpi_chattering_in.';
COMMENT ON COLUMN alarm_kpi_hour.alarms IS 'Annunciated activations (raised without data.cause) in the hour.';
COMMENT ON COLUMN alarm_kpi_hour.chattering_alarms IS
    'Alarms with an activation in the hour that was the chattering_count-th (or later) within chattering_window_s (0: none).';

CREATE TABLE alarm_kpi_hour_stale (
    hour      timestamptz PRIMARY KEY,
    error     text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE alarm_kpi_hour_stale IS
    'Hours whose alarm_kpi_hour rows could not be recomputed (the error); read from the raw events until alarm_kpi_hour_repair() succeeds. Normally empty.';

CREATE FUNCTION alarm_kpi_window_us() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (coalesce((SELECT value FROM alarm_kpi_target WHERE key = 'chattering_window_s'), 60) * 1e6)::bigint
$$;

-- Rewrites the rows of the UTC hours [p_first, p_last] (hour starts, µs) from their events.
CREATE FUNCTION alarm_kpi_hour_recompute(p_first bigint, p_last bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    w bigint := alarm_kpi_window_us();
    c double precision := coalesce((SELECT value FROM alarm_kpi_target WHERE key = 'chattering_count'), 3);
BEGIN
    DELETE FROM alarm_kpi_hour
    WHERE hour >= to_timestamp(p_first / 1e6) AND hour <= to_timestamp(p_last / 1e6);
    INSERT INTO alarm_kpi_hour
    WITH r AS (
        SELECT a.enterprise_id, a.position, e.alarm_id, e.at_us, (e.data ->> 'tier')::int AS tier,
               count(*) OVER (PARTITION BY e.alarm_id ORDER BY e.at_us
                              RANGE BETWEEN w PRECEDING AND CURRENT ROW) AS n
        FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
        WHERE e.kind = 'raised' AND NOT e.data ? 'cause'
          AND e.at_us >= p_first - w AND e.at_us < p_last + 3600000000
    )
    SELECT r.enterprise_id, r.position, to_timestamp((r.at_us / 3600000000) * 3600),
           count(*),
           count(*) FILTER (WHERE r.tier = 4), count(*) FILTER (WHERE r.tier = 3),
           count(*) FILTER (WHERE r.tier = 2), count(*) FILTER (WHERE r.tier = 1),
           count(DISTINCT r.alarm_id) FILTER (WHERE r.n >= c)
    FROM r
    WHERE r.at_us >= p_first
    GROUP BY 1, 2, 3;
    DELETE FROM alarm_kpi_hour_stale
    WHERE hour >= to_timestamp(p_first / 1e6) AND hour <= to_timestamp(p_last / 1e6);
END;
$$;

-- Recomputes every hour the activations at p_at_us touch (their own and the chattering window
-- after them), one run of consecutive hours at a time, under the rollup's lock.
CREATE FUNCTION alarm_kpi_hour_touch(p_at_us bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    w bigint := alarm_kpi_window_us();
    run record;
BEGIN
    IF p_at_us IS NULL OR cardinality(p_at_us) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(7243661058127); -- 'alarm_kpi_hour': one recompute at a time
    FOR run IN
        WITH h AS (
            SELECT DISTINCT generate_series((t / 3600000000) * 3600000000,
                                            ((t + w) / 3600000000) * 3600000000, 3600000000) AS h
            FROM unnest(p_at_us) AS t
        ), g AS (
            SELECT h, h - 3600000000 * row_number() OVER (ORDER BY h) AS grp FROM h
        )
        SELECT min(h) AS first, max(h) AS last FROM g GROUP BY grp ORDER BY 1
    LOOP
        BEGIN
            PERFORM alarm_kpi_hour_recompute(run.first, run.last);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'alarm_kpi_hour: hours % to % not rolled up (read from the raw events): %',
                to_timestamp(run.first / 1e6), to_timestamp(run.last / 1e6), SQLERRM;
            INSERT INTO alarm_kpi_hour_stale (hour, error)
            SELECT to_timestamp(x / 1e6), SQLERRM
            FROM generate_series(run.first, run.last, 3600000000) AS x
            ON CONFLICT (hour) DO UPDATE SET error = EXCLUDED.error, failed_at = EXCLUDED.failed_at;
        END;
    END LOOP;
END;
$$;

CREATE FUNCTION alarm_kpi_hour_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alarm_kpi_hour_touch((SELECT array_agg(n.at_us) FROM new_events n WHERE n.kind = 'raised'));
    RETURN NULL;
END;
$$;
CREATE FUNCTION alarm_kpi_hour_on_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alarm_kpi_hour_touch((
        SELECT array_agg(x.at_us) FROM (
            SELECT o.at_us FROM old_events o WHERE o.kind = 'raised'
            UNION SELECT n.at_us FROM new_events n WHERE n.kind = 'raised') x));
    RETURN NULL;
END;
$$;
CREATE FUNCTION alarm_kpi_hour_on_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alarm_kpi_hour_touch((SELECT array_agg(o.at_us) FROM old_events o WHERE o.kind = 'raised'));
    RETURN NULL;
END;
$$;
CREATE FUNCTION alarm_kpi_hour_on_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM alarm_kpi_hour;
    DELETE FROM alarm_kpi_hour_stale;
    RETURN NULL;
END;
$$;
CREATE TRIGGER alarm_kpi_hour_insert AFTER INSERT ON alarm_event
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION alarm_kpi_hour_on_insert();
CREATE TRIGGER alarm_kpi_hour_update AFTER UPDATE ON alarm_event
    REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION alarm_kpi_hour_on_update();
CREATE TRIGGER alarm_kpi_hour_delete AFTER DELETE ON alarm_event
    REFERENCING OLD TABLE AS old_events FOR EACH STATEMENT EXECUTE FUNCTION alarm_kpi_hour_on_delete();
CREATE TRIGGER alarm_kpi_hour_truncate AFTER TRUNCATE ON alarm_event
    FOR EACH STATEMENT EXECUTE FUNCTION alarm_kpi_hour_on_truncate();

-- An alarm moved to another plant or position: its hours are counted there now. (A row
-- trigger with a WHEN clause: the alarm row is updated with every event, and only a move runs
-- the function.)
CREATE FUNCTION alarm_kpi_hour_on_alarm_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alarm_kpi_hour_touch((
        SELECT array_agg(e.at_us) FROM alarm_event e WHERE e.alarm_id = NEW.id AND e.kind = 'raised'));
    RETURN NULL;
END;
$$;
CREATE TRIGGER alarm_kpi_hour_alarm_moved AFTER UPDATE OF enterprise_id, "position" ON alarm
    FOR EACH ROW
    WHEN (OLD.enterprise_id IS DISTINCT FROM NEW.enterprise_id OR OLD.position IS DISTINCT FROM NEW.position)
    EXECUTE FUNCTION alarm_kpi_hour_on_alarm_moved();

-- Recomputes every hour (chattering targets changed; a repair).
CREATE FUNCTION alarm_kpi_hour_rebuild() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo bigint;
    hi bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7243661058127);
    SELECT min(at_us), max(at_us) INTO lo, hi FROM alarm_event WHERE kind = 'raised';
    DELETE FROM alarm_kpi_hour;
    DELETE FROM alarm_kpi_hour_stale;
    IF lo IS NOT NULL THEN
        PERFORM alarm_kpi_hour_recompute((lo / 3600000000) * 3600000000,
                                         ((hi + alarm_kpi_window_us()) / 3600000000) * 3600000000);
    END IF;
END;
$$;

-- Recomputes the hours listed as stale; returns how many are still stale.
CREATE FUNCTION alarm_kpi_hour_repair() RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM alarm_kpi_hour_touch((SELECT array_agg((extract(epoch FROM hour) * 1e6)::bigint)
                                  FROM alarm_kpi_hour_stale));
    RETURN (SELECT count(*) FROM alarm_kpi_hour_stale);
END;
$$;
COMMENT ON FUNCTION alarm_kpi_hour_repair() IS
    'Recompute the alarm_kpi_hour rows of the hours in alarm_kpi_hour_stale; returns how many remain stale.';

CREATE FUNCTION alarm_kpi_target_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM (
            SELECT key, value FROM old_targets WHERE key IN ('chattering_count', 'chattering_window_s')
            EXCEPT
            SELECT key, value FROM new_targets WHERE key IN ('chattering_count', 'chattering_window_s')) d
    ) OR EXISTS (
        SELECT 1 FROM (
            SELECT key, value FROM new_targets WHERE key IN ('chattering_count', 'chattering_window_s')
            EXCEPT
            SELECT key, value FROM old_targets WHERE key IN ('chattering_count', 'chattering_window_s')) d
    ) THEN
        PERFORM alarm_kpi_hour_rebuild();
    END IF;
    RETURN NULL;
END;
$$;
CREATE FUNCTION alarm_kpi_target_set() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- a first value equal to the default (3 within 60 s) changes nothing
    IF EXISTS (SELECT 1 FROM new_targets
               WHERE (key = 'chattering_count' AND value <> 3) OR (key = 'chattering_window_s' AND value <> 60)) THEN
        PERFORM alarm_kpi_hour_rebuild();
    END IF;
    RETURN NULL;
END;
$$;
CREATE FUNCTION alarm_kpi_target_unset() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_targets
               WHERE (key = 'chattering_count' AND value <> 3) OR (key = 'chattering_window_s' AND value <> 60)) THEN
        PERFORM alarm_kpi_hour_rebuild();
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER alarm_kpi_target_update AFTER UPDATE ON alarm_kpi_target
    REFERENCING OLD TABLE AS old_targets NEW TABLE AS new_targets
    FOR EACH STATEMENT EXECUTE FUNCTION alarm_kpi_target_changed();
CREATE TRIGGER alarm_kpi_target_insert AFTER INSERT ON alarm_kpi_target
    REFERENCING NEW TABLE AS new_targets FOR EACH STATEMENT EXECUTE FUNCTION alarm_kpi_target_set();
CREATE TRIGGER alarm_kpi_target_delete AFTER DELETE ON alarm_kpi_target
    REFERENCING OLD TABLE AS old_targets FOR EACH STATEMENT EXECUTE FUNCTION alarm_kpi_target_unset();

-- The history already there.
SELECT alarm_kpi_hour_rebuild();

-- The panels' functions (0304) now read the rollup: the rows of the hours overlapping
-- [t_from, t_to], as before; hours listed as stale come from the raw events (as 0304 read them),
-- and that part is not even run while no stale hour falls in the range.
CREATE FUNCTION alarm_kpi_hourly_raw_in(t_from timestamptz, t_to timestamptz)
RETURNS TABLE (enterprise_id text, "position" text, hour timestamptz,
               alarms bigint, red bigint, orange bigint, yellow bigint, blue bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
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
  AND e.at_us >= (SELECT (extract(epoch FROM date_trunc('hour', t_from)) * 1e6)::bigint)
  AND e.at_us < (SELECT (extract(epoch FROM date_trunc('hour', t_to) + interval '1 hour') * 1e6)::bigint)
GROUP BY 1, 2, 3
$$;
COMMENT ON FUNCTION alarm_kpi_hourly_raw_in(timestamptz, timestamptz) IS
    'alarm_kpi_hourly for the hours overlapping [t_from, t_to] from the raw events (0304); the reference for alarm_kpi_hour.';

CREATE FUNCTION alarm_kpi_chattering_raw_in(t_from timestamptz, t_to timestamptz)
RETURNS TABLE (enterprise_id text, "position" text, hour timestamptz, chattering_alarms bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH r AS (
    SELECT a.enterprise_id, a.position, e.alarm_id, e.at_us,
           count(*) OVER (PARTITION BY e.alarm_id ORDER BY e.at_us
                          RANGE BETWEEN (SELECT alarm_kpi_window_us()) PRECEDING AND CURRENT ROW) AS n
    FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
    WHERE e.kind = 'raised' AND NOT e.data ? 'cause'
      AND e.at_us >= (SELECT (extract(epoch FROM date_trunc('hour', t_from)) * 1e6)::bigint
                             - alarm_kpi_window_us())
      AND e.at_us < (SELECT (extract(epoch FROM date_trunc('hour', t_to) + interval '1 hour') * 1e6)::bigint)
)
SELECT r.enterprise_id, r.position, date_trunc('hour', to_timestamp(r.at_us / 1e6)) AS hour,
       count(DISTINCT r.alarm_id) AS chattering_alarms
FROM r
WHERE r.n >= coalesce((SELECT value FROM alarm_kpi_target WHERE key = 'chattering_count'), 3)
  AND r.at_us >= (SELECT (extract(epoch FROM date_trunc('hour', t_from)) * 1e6)::bigint)
GROUP BY 1, 2, 3
$$;
COMMENT ON FUNCTION alarm_kpi_chattering_raw_in(timestamptz, timestamptz) IS
    'alarm_kpi_chattering for the hours overlapping [t_from, t_to] from the raw events (0304); the reference for alarm_kpi_hour.';

CREATE OR REPLACE FUNCTION alarm_kpi_hourly_in(t_from timestamptz, t_to timestamptz)
RETURNS TABLE (enterprise_id text, "position" text, hour timestamptz,
               alarms bigint, red bigint, orange bigint, yellow bigint, blue bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT k.enterprise_id, k.position, k.hour, k.alarms, k.red, k.orange, k.yellow, k.blue
FROM alarm_kpi_hour k
WHERE k.hour >= date_trunc('hour', t_from) AND k.hour <= date_trunc('hour', t_to)
  AND NOT EXISTS (SELECT 1 FROM alarm_kpi_hour_stale s WHERE s.hour = k.hour)
UNION ALL
SELECT r.* FROM alarm_kpi_hourly_raw_in(t_from, t_to) r
WHERE EXISTS (SELECT 1 FROM alarm_kpi_hour_stale s
              WHERE s.hour >= date_trunc('hour', t_from) AND s.hour <= date_trunc('hour', t_to))
  AND r.hour IN (SELECT s.hour FROM alarm_kpi_hour_stale s)
$$;
COMMENT ON FUNCTION alarm_kpi_hourly_in(timestamptz, timestamptz) IS
    'alarm_kpi_hourly for the hours overlapping [t_from, t_to], from the rollup alarm_kpi_hour (stale hours from the raw events).';

CREATE OR REPLACE FUNCTION alarm_kpi_chattering_in(t_from timestamptz, t_to timestamptz)
RETURNS TABLE (enterprise_id text, "position" text, hour timestamptz, chattering_alarms bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT k.enterprise_id, k.position, k.hour, k.chattering_alarms
FROM alarm_kpi_hour k
WHERE k.hour >= date_trunc('hour', t_from) AND k.hour <= date_trunc('hour', t_to)
  AND k.chattering_alarms > 0
  AND NOT EXISTS (SELECT 1 FROM alarm_kpi_hour_stale s WHERE s.hour = k.hour)
UNION ALL
SELECT r.* FROM alarm_kpi_chattering_raw_in(t_from, t_to) r
WHERE EXISTS (SELECT 1 FROM alarm_kpi_hour_stale s
              WHERE s.hour >= date_trunc('hour', t_from) AND s.hour <= date_trunc('hour', t_to))
  AND r.hour IN (SELECT s.hour FROM alarm_kpi_hour_stale s)
$$;
COMMENT ON FUNCTION alarm_kpi_chattering_in(timestamptz, timestamptz) IS
    'alarm_kpi_chattering for the hours overlapping [t_from, t_to], from the rollup alarm_kpi_hour (stale hours from the raw events).';

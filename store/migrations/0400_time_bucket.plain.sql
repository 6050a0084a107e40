-- time_bucket(interval, timestamptz) for plain PostgreSQL.
-- The provisioned Grafana data source has its TimescaleDB option on, so Grafana
-- expands $__timeGroup(col, '5m') to time_bucket('300.000s', col) (Grafana's
-- PostgreSQL macro engine). Without the extension that function does not exist;
-- this one gives the same buckets (TimescaleDB's default origin, Monday
-- 2000-01-03 00:00 UTC, so weekly buckets agree too) and lets hand-written
-- panels run unchanged in both storage modes.
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_timestamp(
        floor((extract(epoch FROM ts) - 946857600) / extract(epoch FROM bucket_width))
        * extract(epoch FROM bucket_width) + 946857600)
$$;

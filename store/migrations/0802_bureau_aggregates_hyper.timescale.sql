-- TimescaleDB mode: the bureau's per-sensor 1-minute aggregates (bureau_aggregate, 0801) become a
-- hypertable, compressed when a week old and dropped after two years. Written from the
-- TimescaleDB 2.x documentation: create_hypertable with by_range (a table that may already hold
-- rows needs migrate_data), ALTER TABLE ... SET (timescaledb.compress, compress_segmentby,
-- compress_orderby), add_compression_policy and add_retention_policy (if_not_exists).
-- The primary key (enterprise_id, sensor, bucket) holds the partitioning column, as a unique
-- index on a hypertable must; INSERT ... ON CONFLICT DO NOTHING (the ingest) works on
-- compressed chunks too. Two years is the 1-minute rollups' default retention on the
-- enterprise side (readings_1m, hazmon.store.migrate): the same minutes, kept as long.
SELECT create_hypertable('bureau_aggregate', by_range('bucket', INTERVAL '7 days'), migrate_data => true);

ALTER TABLE bureau_aggregate SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'enterprise_id, sensor',
    timescaledb.compress_orderby = 'bucket'
);

SELECT add_compression_policy('bureau_aggregate', compress_after => INTERVAL '7 days', if_not_exists => true);
SELECT add_retention_policy('bureau_aggregate', drop_after => INTERVAL '730 days', if_not_exists => true);

-- Both modes: the source-time ranges of readings committed that the rollups (readings_1m,
-- readings_1h, readings_1d_counts) have not been refreshed over yet (issue 13).
--
-- Every writer of readings (hazmon.store.write_readings: live batches, spool replays after a
-- database outage, OPC UA history backfills) inserts one row per cluster of source times in the
-- same transaction as the readings, so what is committed is recorded, crash or no crash; the
-- daemon's refresher (hazmon.store.refresh_dirty) consumes the rows: in plain mode it deletes
-- them in the transaction that refreshes the rollups, on TimescaleDB (whose refresh cannot run
-- inside a transaction) it deletes the rows it read once their refresh is done. Before this
-- table the ranges lived in the daemon's memory, and those of the last minute before a crash
-- were never refreshed.
--
-- Append-only for the writers (no row they share, so concurrent writers never wait on each
-- other); the refresher coalesces the rows it consumes.
CREATE TABLE readings_dirty (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lo timestamptz NOT NULL,  -- the oldest source time written
    hi timestamptz NOT NULL,  -- the newest (inclusive)
    CONSTRAINT readings_dirty_ordered CHECK (lo <= hi)
);
COMMENT ON TABLE readings_dirty IS
    'Source-time ranges of committed readings the rollups still need to be refreshed over; written with the readings, consumed by the refresh (hazmon.store.refresh_dirty).';

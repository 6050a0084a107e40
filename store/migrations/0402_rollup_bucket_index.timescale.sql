-- TimescaleDB continuous aggregates come with an index on their time bucket;
-- the plain variant adds the equivalent to the rollup tables.
SELECT 1;

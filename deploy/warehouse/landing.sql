-- Land sequence.fills, sequence.orders, sequence.book and sequence.prices as
-- Parquet partitioned by event hour (dt = UTC date, hr = UTC hour of the
-- vendor's event time), with Flink SQL (Apache Flink 2.2).
--
-- Values are read in the Confluent wire format: the avro-confluent format
-- looks the writer schema up by the id in each record (GET /schemas/ids/{id})
-- and resolves it against the columns declared here, so new optional fields
-- in a topic's schema do not break the job. Columns not declared (`extras`
-- on book and prices here) are skipped.
--
-- ${NAME} placeholders are filled in by landing.py; in the SQL client, replace
-- them by hand: BOOTSTRAP (host:port,...), REGISTRY (http://host:port),
-- TOPIC_PREFIX (sequence), WAREHOUSE (file:///path or s3://bucket/path).
-- Secured clusters: add 'properties.security.protocol', 'properties.sasl.*'
-- and 'value.avro-confluent.basic-auth.*' to each source.
--
-- Two things in Flink 2.2 decide the shape below:
-- * Avro `timestamp-micros` cannot be declared as TIMESTAMP(6): the format
--   derives its reader schema only for TIMESTAMP(0..3), and it reads a long
--   as epoch milliseconds. So event times are read as BIGINT (epoch
--   microseconds, exactly as written) and turned into TIMESTAMP(6) in the
--   INSERTs by an exact integer/string expression, never a float.
-- * Plain Parquet files cannot be updated, and Flink's filesystem sink
--   refuses update changes (an `upsert-kafka` source makes them); Flink's
--   batch mode refuses upsert-kafka altogether. So `orders` lands as its
--   changelog: every state of every order with its Kafka partition and offset,
--   and the latest state per order is the row with the highest offset of its
--   key (the topic is keyed by node_order_id, so one key is one partition).
--   That is exactly what upsert-kafka would compute, applied at read time;
--   report.py and README.md have the view.
-- Decimals are read from Avro bytes+decimal into DECIMAL(38,9)/(38,8)/(38,18)
-- unscaled, and written as Parquet DECIMAL (fixed_len_byte_array) unchanged.

CREATE TABLE kafka_fills (
  node_order_id      STRING NOT NULL,
  venue_execution_id STRING NOT NULL,
  venue              STRING,
  symbol             STRING NOT NULL,
  side               STRING NOT NULL,
  qty                DECIMAL(38, 8) NOT NULL,
  qty_1e8            BIGINT NOT NULL,
  price              DECIMAL(38, 9) NOT NULL,
  price_1e9          BIGINT NOT NULL,
  fee                DECIMAL(38, 9),
  fee_1e9            BIGINT,
  edge_id            STRING,
  ts_unix_ns         BIGINT NOT NULL,
  ts                 BIGINT NOT NULL,  -- timestamp-micros, see above
  extras             MAP<STRING, STRING> NOT NULL,
  kafka_partition    INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset       BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = '${TOPIC_PREFIX}.fills',
  'properties.bootstrap.servers' = '${BOOTSTRAP}',
  'properties.group.id' = 'sequence-warehouse-landing',
  'scan.startup.mode' = 'earliest-offset',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}'
);

CREATE TABLE kafka_orders (
  node_order_id      STRING NOT NULL,
  client_id          STRING,
  client_order_id    STRING,
  symbol             STRING NOT NULL,
  side               STRING NOT NULL,
  qty                DECIMAL(38, 8) NOT NULL,
  qty_1e8            BIGINT NOT NULL,
  filled_qty         DECIMAL(38, 8),
  filled_qty_1e8     BIGINT,
  status             STRING NOT NULL,
  created_unix_ns    BIGINT,
  created_at         BIGINT,           -- timestamp-micros
  updated_unix_ns    BIGINT NOT NULL,
  updated_at         BIGINT NOT NULL,  -- timestamp-micros
  extras             MAP<STRING, STRING> NOT NULL,
  kafka_partition    INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset       BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = '${TOPIC_PREFIX}.orders',
  'properties.bootstrap.servers' = '${BOOTSTRAP}',
  'properties.group.id' = 'sequence-warehouse-landing',
  'scan.startup.mode' = 'earliest-offset',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}'
);

CREATE TABLE kafka_book (
  symbol             STRING NOT NULL,
  venue              STRING NOT NULL,
  instrument_type    STRING,
  bids               ARRAY<ROW<px DECIMAL(38, 18) NOT NULL, sz DECIMAL(38, 18) NOT NULL> NOT NULL> NOT NULL,
  asks               ARRAY<ROW<px DECIMAL(38, 18) NOT NULL, sz DECIMAL(38, 18) NOT NULL> NOT NULL> NOT NULL,
  ts_ns              BIGINT NOT NULL,
  ts                 BIGINT NOT NULL,  -- timestamp-micros
  is_snapshot        BOOLEAN NOT NULL,
  checksum           BIGINT,
  kafka_partition    INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset       BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = '${TOPIC_PREFIX}.book',
  'properties.bootstrap.servers' = '${BOOTSTRAP}',
  'properties.group.id' = 'sequence-warehouse-landing',
  'scan.startup.mode' = 'earliest-offset',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}'
);

CREATE TABLE kafka_prices (
  symbol             STRING NOT NULL,
  instrument_type    STRING,
  best_bid_px        DECIMAL(38, 9),
  best_bid_px_1e9    BIGINT,
  best_bid_sz        DECIMAL(38, 8),
  best_bid_sz_1e8    BIGINT,
  best_bid_venue     STRING,
  best_ask_px        DECIMAL(38, 9),
  best_ask_px_1e9    BIGINT,
  best_ask_sz        DECIMAL(38, 8),
  best_ask_sz_1e8    BIGINT,
  best_ask_venue     STRING,
  spread_bps         DOUBLE,           -- a double in the Avro schema itself
  ts_ns              BIGINT NOT NULL,
  ts                 BIGINT NOT NULL,  -- timestamp-micros
  kafka_partition    INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset       BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = '${TOPIC_PREFIX}.prices',
  'properties.bootstrap.servers' = '${BOOTSTRAP}',
  'properties.group.id' = 'sequence-warehouse-landing',
  'scan.startup.mode' = 'earliest-offset',
  'value.format' = 'avro-confluent',
  'value.avro-confluent.url' = '${REGISTRY}'
);

-- Sinks: Hive-style directories <table>/dt=YYYY-MM-DD/hr=HH/part-*. Files are
-- committed at each checkpoint (exactly once with the Kafka offsets in it) and
-- when a bounded run ends; in-progress files are hidden (a leading dot).
-- Timestamps are Parquet INT64 TIMESTAMP(MICROS) holding UTC wall time.

CREATE TABLE fills (
  node_order_id      STRING,
  venue_execution_id STRING,
  venue              STRING,
  symbol             STRING,
  side               STRING,
  qty                DECIMAL(38, 8),
  qty_1e8            BIGINT,
  price              DECIMAL(38, 9),
  price_1e9          BIGINT,
  fee                DECIMAL(38, 9),
  fee_1e9            BIGINT,
  edge_id            STRING,
  ts_unix_ns         BIGINT,
  ts                 TIMESTAMP(6),
  extras             MAP<STRING, STRING>,
  kafka_partition    INT,
  kafka_offset       BIGINT,
  dt                 STRING,
  hr                 STRING
) PARTITIONED BY (dt, hr) WITH (
  'connector' = 'filesystem',
  'path' = '${WAREHOUSE}/fills',
  'format' = 'parquet',
  'parquet.write.int64.timestamp' = 'true',
  'parquet.timestamp.time.unit' = 'micros',
  'parquet.utc-timezone' = 'true'
);

CREATE TABLE orders (
  node_order_id      STRING,
  client_id          STRING,
  client_order_id    STRING,
  symbol             STRING,
  side               STRING,
  qty                DECIMAL(38, 8),
  qty_1e8            BIGINT,
  filled_qty         DECIMAL(38, 8),
  filled_qty_1e8     BIGINT,
  status             STRING,
  created_unix_ns    BIGINT,
  created_at         TIMESTAMP(6),
  updated_unix_ns    BIGINT,
  updated_at         TIMESTAMP(6),
  extras             MAP<STRING, STRING>,
  kafka_partition    INT,
  kafka_offset       BIGINT,
  dt                 STRING,
  hr                 STRING
) PARTITIONED BY (dt, hr) WITH (
  'connector' = 'filesystem',
  'path' = '${WAREHOUSE}/orders',
  'format' = 'parquet',
  'parquet.write.int64.timestamp' = 'true',
  'parquet.timestamp.time.unit' = 'micros',
  'parquet.utc-timezone' = 'true'
);

CREATE TABLE book (
  symbol             STRING,
  venue              STRING,
  instrument_type    STRING,
  bids               ARRAY<ROW<px DECIMAL(38, 18), sz DECIMAL(38, 18)>>,
  asks               ARRAY<ROW<px DECIMAL(38, 18), sz DECIMAL(38, 18)>>,
  ts_ns              BIGINT,
  ts                 TIMESTAMP(6),
  is_snapshot        BOOLEAN,
  checksum           BIGINT,
  kafka_partition    INT,
  kafka_offset       BIGINT,
  dt                 STRING,
  hr                 STRING
) PARTITIONED BY (dt, hr) WITH (
  'connector' = 'filesystem',
  'path' = '${WAREHOUSE}/book',
  'format' = 'parquet',
  'parquet.write.int64.timestamp' = 'true',
  'parquet.timestamp.time.unit' = 'micros',
  'parquet.utc-timezone' = 'true'
);

CREATE TABLE prices (
  symbol             STRING,
  instrument_type    STRING,
  best_bid_px        DECIMAL(38, 9),
  best_bid_px_1e9    BIGINT,
  best_bid_sz        DECIMAL(38, 8),
  best_bid_sz_1e8    BIGINT,
  best_bid_venue     STRING,
  best_ask_px        DECIMAL(38, 9),
  best_ask_px_1e9    BIGINT,
  best_ask_sz        DECIMAL(38, 8),
  best_ask_sz_1e8    BIGINT,
  best_ask_venue     STRING,
  spread_bps         DOUBLE,
  ts_ns              BIGINT,
  ts                 TIMESTAMP(6),
  kafka_partition    INT,
  kafka_offset       BIGINT,
  dt                 STRING,
  hr                 STRING
) PARTITIONED BY (dt, hr) WITH (
  'connector' = 'filesystem',
  'path' = '${WAREHOUSE}/prices',
  'format' = 'parquet',
  'parquet.write.int64.timestamp' = 'true',
  'parquet.timestamp.time.unit' = 'micros',
  'parquet.utc-timezone' = 'true'
);

-- Epoch microseconds -> TIMESTAMP(6), exactly: whole seconds through
-- FROM_UNIXTIME (session time zone, which landing.py sets to UTC), the
-- microseconds appended as six digits, parsed by CAST. Flink 2.2 has no
-- microsecond-precision TO_TIMESTAMP_LTZ and no microsecond interval.
CREATE TEMPORARY VIEW fills_v AS
SELECT *, CAST(CONCAT(FROM_UNIXTIME((ts - MOD(ts, 1000000)) / 1000000), '.',
                      LPAD(CAST(MOD(ts, 1000000) AS STRING), 6, '0')) AS TIMESTAMP(6)) AS event_ts
FROM kafka_fills;

CREATE TEMPORARY VIEW orders_v AS
SELECT *,
  CAST(CONCAT(FROM_UNIXTIME((updated_at - MOD(updated_at, 1000000)) / 1000000), '.',
              LPAD(CAST(MOD(updated_at, 1000000) AS STRING), 6, '0')) AS TIMESTAMP(6)) AS event_ts,
  CAST(CONCAT(FROM_UNIXTIME((created_at - MOD(created_at, 1000000)) / 1000000), '.',
              LPAD(CAST(MOD(created_at, 1000000) AS STRING), 6, '0')) AS TIMESTAMP(6)) AS created_ts
FROM kafka_orders;

CREATE TEMPORARY VIEW book_v AS
SELECT *, CAST(CONCAT(FROM_UNIXTIME((ts - MOD(ts, 1000000)) / 1000000), '.',
                      LPAD(CAST(MOD(ts, 1000000) AS STRING), 6, '0')) AS TIMESTAMP(6)) AS event_ts
FROM kafka_book;

CREATE TEMPORARY VIEW prices_v AS
SELECT *, CAST(CONCAT(FROM_UNIXTIME((ts - MOD(ts, 1000000)) / 1000000), '.',
                      LPAD(CAST(MOD(ts, 1000000) AS STRING), 6, '0')) AS TIMESTAMP(6)) AS event_ts
FROM kafka_prices;

-- One job, four pipelines (landing.py runs the INSERTs as one statement set).
INSERT INTO fills
SELECT node_order_id, venue_execution_id, venue, symbol, side, qty, qty_1e8, price, price_1e9,
       fee, fee_1e9, edge_id, ts_unix_ns, event_ts, extras, kafka_partition, kafka_offset,
       DATE_FORMAT(event_ts, 'yyyy-MM-dd'), DATE_FORMAT(event_ts, 'HH')
FROM fills_v;

INSERT INTO orders
SELECT node_order_id, client_id, client_order_id, symbol, side, qty, qty_1e8, filled_qty,
       filled_qty_1e8, status, created_unix_ns, created_ts, updated_unix_ns, event_ts, extras,
       kafka_partition, kafka_offset,
       DATE_FORMAT(event_ts, 'yyyy-MM-dd'), DATE_FORMAT(event_ts, 'HH')
FROM orders_v;

INSERT INTO book
SELECT symbol, venue, instrument_type, bids, asks, ts_ns, event_ts, is_snapshot, checksum,
       kafka_partition, kafka_offset,
       DATE_FORMAT(event_ts, 'yyyy-MM-dd'), DATE_FORMAT(event_ts, 'HH')
FROM book_v;

INSERT INTO prices
SELECT symbol, instrument_type, best_bid_px, best_bid_px_1e9, best_bid_sz, best_bid_sz_1e8,
       best_bid_venue, best_ask_px, best_ask_px_1e9, best_ask_sz, best_ask_sz_1e8,
       best_ask_venue, spread_bps, ts_ns, event_ts, kafka_partition, kafka_offset,
       DATE_FORMAT(event_ts, 'yyyy-MM-dd'), DATE_FORMAT(event_ts, 'HH')
FROM prices_v;

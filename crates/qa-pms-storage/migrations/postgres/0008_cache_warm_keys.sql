-- The most-read keys of each cache, saved by a process shutting down and loaded back by the next
-- one to start (a warm restart). `key` is the cache key as qa-pms-api/src/warm.rs writes it.
CREATE TABLE cache_warm_keys (
    cache    TEXT        NOT NULL,
    rank     INTEGER     NOT NULL,
    key      TEXT        NOT NULL,
    reads    BIGINT      NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cache, rank)
);

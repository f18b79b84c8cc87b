-- The change feed by page (feed.go): one row per run of consecutive events the sequencer numbered
-- together, first_seq to last_seq, their events encoded in events (one line each, in seq order),
-- instead of one row per event. A page costs one row and two index entries however many events it
-- holds. The events already fed are kept, each as a page of its own, and their seqs with them.
CREATE TABLE IF NOT EXISTS sso_feed_page (
    last_seq BIGINT NOT NULL,
    first_seq BIGINT NOT NULL,
    fed_time DATETIME(6) NOT NULL,
    events LONGBLOB NOT NULL,
    PRIMARY KEY (last_seq),
    KEY sso_feed_page_fed_time_idx (fed_time)
) ENGINE = InnoDB;

INSERT IGNORE INTO sso_feed_page (last_seq, first_seq, fed_time, events)
    SELECT seq, seq, fed_time, CONCAT_WS('\t', op, user_id, ust_hash, version,
        TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', event_time), cid, name)
    FROM sso_feed;

DROP TABLE IF EXISTS sso_feed;

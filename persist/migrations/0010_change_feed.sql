-- The change feed (feed.go): the change log's attribute entries and the attributes that expired,
-- one row per event, numbered in the order a single sequencer (whoever holds sso_feed_state's
-- row) took them, so that a reader's cursor never passes an event that commits later. fed marks
-- the rows of sso_change already taken; sso_feed_expired the (attribute, version) whose expire
-- event is in the feed, which the purger requires before it deletes an expired row.
CREATE TABLE IF NOT EXISTS sso_feed (
    seq BIGINT NOT NULL,
    op CHAR(1) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    ust_hash VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    name VARBINARY(191) NOT NULL,
    version BIGINT NOT NULL,
    event_time DATETIME(6) NOT NULL,
    fed_time DATETIME(6) NOT NULL,
    cid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL DEFAULT '',
    PRIMARY KEY (seq),
    KEY sso_feed_user_idx (user_id, seq),
    KEY sso_feed_fed_time_idx (fed_time)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS sso_feed_state (
    id TINYINT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

INSERT IGNORE INTO sso_feed_state (id, last_seq) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS sso_feed_expired (
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    ust_hash VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    name VARBINARY(191) NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (user_id, ust_hash, name, version)
) ENGINE = InnoDB;

-- The column is added in place at once; the index is built online, writes going on meanwhile.
-- Rows logged before this migration are fed too: the feed starts with what the log kept.
ALTER TABLE sso_change ADD COLUMN IF NOT EXISTS fed BOOL NOT NULL DEFAULT FALSE;
ALTER TABLE sso_change ADD INDEX IF NOT EXISTS sso_change_fed_idx (fed, change_id), LOCK = NONE;

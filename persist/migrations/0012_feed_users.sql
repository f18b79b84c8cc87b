-- A row per user with events in a page of the change feed (feed.go), so that a reader of one
-- user's events reads only the pages that hold some; last_seq's index is the purge's.
CREATE TABLE IF NOT EXISTS sso_feed_user (
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, last_seq),
    KEY sso_feed_user_last_seq_idx (last_seq)
) ENGINE = InnoDB;

-- The pages migration 0011 made of the events fed before it, one event each (op, then user_id).
INSERT IGNORE INTO sso_feed_user (user_id, last_seq)
    SELECT SUBSTRING_INDEX(SUBSTRING_INDEX(events, '\t', 2), '\t', -1), last_seq
    FROM sso_feed_page WHERE first_seq = last_seq;

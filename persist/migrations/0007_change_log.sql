-- The change log (changelog.go): one row per committed transaction that changed a row Redis may
-- hold a copy of, written in that transaction, kept for the change feed's retention. entries
-- lists the rows touched, one per line, never their values (a transaction that touched many rows
-- may take several). A row of sso_change_pending marks a row of the log whose changes no instance
-- is known to have applied to Redis yet; token names the marks of one transaction, which its
-- writer drops together.
CREATE TABLE IF NOT EXISTS sso_change (
    change_id BIGINT NOT NULL AUTO_INCREMENT,
    change_time DATETIME(6) NOT NULL,
    cid VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL DEFAULT '',
    entries MEDIUMBLOB NOT NULL,
    PRIMARY KEY (change_id),
    KEY sso_change_time_idx (change_time)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS sso_change_pending (
    change_id BIGINT NOT NULL,
    token BIGINT NOT NULL,
    created DATETIME(6) NOT NULL,
    PRIMARY KEY (change_id),
    KEY sso_change_pending_token_idx (token),
    KEY sso_change_pending_created_idx (created)
) ENGINE = InnoDB;

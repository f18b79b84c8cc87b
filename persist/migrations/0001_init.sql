-- Users, sessions and user/session attributes: Zato's zato_sso_user, zato_sso_session and
-- zato_sso_attr (zato-sso-reference.md section 5), adapted. Every date is UTC to the microsecond
-- and every row carries a version that each write bumps, so that caches can refuse older copies.

CREATE TABLE IF NOT EXISTS sso_user (
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    username VARCHAR(191) NOT NULL,

    -- Sealed (attrcache.PurposeEmail, bound to user_id). Zato indexes it, but an index on
    -- ciphertext that changes with every write could serve no query, so there is none.
    email TEXT NULL,

    display_name VARCHAR(191) NULL,
    first_name VARCHAR(191) NULL,
    middle_name VARCHAR(191) NULL,
    last_name VARCHAR(191) NULL,
    -- Upper-cased copies of the names, for search; NULL when the name is NULL.
    display_name_upper VARCHAR(191) NULL,
    first_name_upper VARCHAR(191) NULL,
    middle_name_upper VARCHAR(191) NULL,
    last_name_upper VARCHAR(191) NULL,

    is_active BOOL NOT NULL,
    is_internal BOOL NOT NULL,
    is_super_user BOOL NOT NULL,
    is_locked BOOL NOT NULL,
    locked_time DATETIME(6) NULL,
    locked_by VARCHAR(191) NULL,
    creation_ctx TEXT NOT NULL,

    approval_status VARCHAR(191) NOT NULL,
    approval_status_mod_by VARCHAR(191) NOT NULL,
    approval_status_mod_time DATETIME(6) NOT NULL,

    password_hash TEXT NOT NULL,
    password_is_set BOOL NOT NULL,
    password_must_change BOOL NOT NULL,
    password_last_set DATETIME(6) NOT NULL,
    password_expiry DATETIME(6) NOT NULL,

    sign_up_status VARCHAR(191) NOT NULL,
    sign_up_time DATETIME(6) NOT NULL,
    sign_up_confirm_time DATETIME(6) NULL,
    -- NULL for users that have no token, so that they do not collide in the unique key.
    sign_up_confirm_token VARCHAR(191) CHARACTER SET ascii COLLATE ascii_bin NULL,

    is_totp_enabled BOOL NOT NULL DEFAULT FALSE,
    -- Sealed (attrcache.PurposeTOTP, bound to user_id).
    totp_key TEXT NULL,
    totp_label TEXT NULL,

    version BIGINT NOT NULL,

    PRIMARY KEY (user_id),
    UNIQUE KEY sso_user_username_uq (username),
    UNIQUE KEY sso_user_sign_up_confirm_token_uq (sign_up_confirm_token),
    KEY sso_user_approval_status_idx (approval_status),
    KEY sso_user_display_name_upper_idx (display_name_upper),
    KEY sso_user_all_names_upper_idx (first_name_upper, middle_name_upper, last_name_upper),
    KEY sso_user_last_name_upper_idx (last_name_upper),
    KEY sso_user_sign_up_status_idx (sign_up_status)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sso_session (
    -- attrcache.SessionHash: SHA-256 of the raw session id. Raw ids are never stored.
    ust_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    creation_time DATETIME(6) NOT NULL,
    expiration_time DATETIME(6) NOT NULL,
    remote_addr TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    auth_type TEXT NOT NULL,
    auth_principal TEXT NOT NULL,
    ext_session_id TEXT NOT NULL,
    -- JSON list of attrcache.SessionStateChange, at most attrcache.MaxSessionStateChanges long.
    state_changes MEDIUMTEXT NOT NULL,
    version BIGINT NOT NULL,

    PRIMARY KEY (ust_hash),
    KEY sso_session_user_expiration_idx (user_id, expiration_time),
    KEY sso_session_expiration_idx (expiration_time),
    CONSTRAINT sso_session_user_fk FOREIGN KEY (user_id)
        REFERENCES sso_user (user_id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sso_attr (
    user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- The session's attrcache.SessionHash for a session attribute, '' for a user attribute.
    -- There is no foreign key to sso_session (user attributes have no session), so the store
    -- deletes a session's attributes together with the session.
    ust_hash VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    name VARCHAR(191) NOT NULL,
    -- The JSON value; sealed (attrcache.PurposeAttr) when is_encrypted.
    value MEDIUMTEXT NOT NULL,
    is_encrypted BOOL NOT NULL DEFAULT FALSE,
    creation_time DATETIME(6) NOT NULL,
    last_modified DATETIME(6) NOT NULL,
    -- attrcache.NeverExpires (9999-12-31) for an attribute that never expires.
    expiration_time DATETIME(6) NOT NULL,
    version BIGINT NOT NULL,

    PRIMARY KEY (user_id, ust_hash, name),
    KEY sso_attr_expiration_idx (expiration_time),
    CONSTRAINT sso_attr_user_fk FOREIGN KEY (user_id)
        REFERENCES sso_user (user_id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

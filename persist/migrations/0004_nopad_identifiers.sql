-- Text columns compare byte for byte. utf8mb4_bin and ascii_bin are PAD SPACE collations, under
-- which 'alice' = 'alice ' and a user_id with trailing spaces finds its user in MySQL while Redis
-- keys differ; the NO PAD collations (and sso_attr.name, VARBINARY since 0002) compare every
-- byte. Every CHAR and VARCHAR column, and each table's default for new ones, becomes NO PAD.
-- Every statement may run again: a migration that stopped half-way is run whole at the next start.
--
-- The foreign keys name sso_user.user_id, whose collation cannot change under them: they are
-- dropped, and added back once both sides compare alike.
ALTER TABLE sso_session DROP FOREIGN KEY IF EXISTS sso_session_user_fk;
ALTER TABLE sso_attr DROP FOREIGN KEY IF EXISTS sso_attr_user_fk;
--
-- Values that PAD SPACE made equal to another value take that value's form, the one without
-- trailing spaces: attributes written for a padded user_id become their user's, and a username
-- with trailing spaces is found, as before, by its spelling without them (its new version tells
-- caches that the row changed). Under the PAD SPACE unique keys no two rows differed in trailing
-- spaces alone, so no key collides.
UPDATE sso_attr SET user_id = RTRIM(user_id)
WHERE CHAR_LENGTH(user_id) <> CHAR_LENGTH(RTRIM(user_id));
UPDATE sso_session SET user_id = RTRIM(user_id)
WHERE CHAR_LENGTH(user_id) <> CHAR_LENGTH(RTRIM(user_id));
UPDATE sso_user SET username = RTRIM(username), version = version + 1
WHERE CHAR_LENGTH(username) <> CHAR_LENGTH(RTRIM(username)) AND RTRIM(username) <> '';
--
ALTER TABLE sso_user
    MODIFY user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    MODIFY username VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY display_name VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY first_name VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY middle_name VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY last_name VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY display_name_upper VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY first_name_upper VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY middle_name_upper VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY last_name_upper VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY locked_by VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
    MODIFY approval_status VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY approval_status_mod_by VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY sign_up_status VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
    MODIFY sign_up_confirm_token VARCHAR(191) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL,
    DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;
-- Each child table is rebuilt once, with its foreign key back.
ALTER TABLE sso_session
    MODIFY ust_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    MODIFY user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin,
    ADD CONSTRAINT sso_session_user_fk FOREIGN KEY IF NOT EXISTS (user_id)
        REFERENCES sso_user (user_id) ON DELETE CASCADE;
ALTER TABLE sso_attr
    MODIFY user_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    MODIFY ust_hash VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin,
    ADD CONSTRAINT sso_attr_user_fk FOREIGN KEY IF NOT EXISTS (user_id)
        REFERENCES sso_user (user_id) ON DELETE CASCADE;
ALTER TABLE schema_migrations
    MODIFY version VARCHAR(191) CHARACTER SET ascii COLLATE ascii_nopad_bin NOT NULL,
    DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin;

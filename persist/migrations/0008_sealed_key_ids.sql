-- The key id of each sealed value ("ac1.<key id>.<…>", attrcache.EnvelopeKeyID) in an indexed
-- generated column, so that counting the values each key seals (attrcache keys status, the
-- start-up check) and finding those a rotation must re-seal read an index, never the values.
-- NULL where nothing is sealed. An attribute's value is the JSON string of its envelope.
-- The columns are VIRTUAL (added in place at once, no table rebuild) and their indexes are built
-- online (writes go on meanwhile); the index holds the computed key id, so counts read it alone.
ALTER TABLE sso_attr
    ADD COLUMN IF NOT EXISTS value_key_id VARCHAR(32) GENERATED ALWAYS AS
        (IF(is_encrypted AND value LIKE '"ac1.%', LEFT(SUBSTRING_INDEX(SUBSTRING(value, 6), '.', 1), 32), NULL)) VIRTUAL;
ALTER TABLE sso_attr ADD INDEX IF NOT EXISTS sso_attr_value_key_id_idx (value_key_id), LOCK = NONE;
ALTER TABLE sso_user
    ADD COLUMN IF NOT EXISTS email_key_id VARCHAR(32) GENERATED ALWAYS AS
        (IF(email LIKE 'ac1.%', LEFT(SUBSTRING_INDEX(SUBSTRING(email, 5), '.', 1), 32), NULL)) VIRTUAL,
    ADD COLUMN IF NOT EXISTS totp_key_key_id VARCHAR(32) GENERATED ALWAYS AS
        (IF(totp_key LIKE 'ac1.%', LEFT(SUBSTRING_INDEX(SUBSTRING(totp_key, 5), '.', 1), 32), NULL)) VIRTUAL;
ALTER TABLE sso_user
    ADD INDEX IF NOT EXISTS sso_user_email_key_id_idx (email_key_id),
    ADD INDEX IF NOT EXISTS sso_user_totp_key_key_id_idx (totp_key_key_id),
    LOCK = NONE;

-- The size in bytes of each stored value (ciphertext when encrypted), kept by the server, so that
-- a user's quota of bytes (persist.Quota) is summed from this column without reading the values.
ALTER TABLE sso_attr ADD COLUMN value_bytes BIGINT GENERATED ALWAYS AS (LENGTH(value)) STORED;

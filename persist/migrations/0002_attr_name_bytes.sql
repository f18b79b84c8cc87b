-- Attribute names compare byte for byte. Under utf8mb4_bin (a PAD SPACE collation) 'a' and 'a '
-- were one key; VARBINARY has no padding and no collation, orders names as Go's sort does, and
-- bounds a name at attrcache.MaxAttrNameBytes bytes (VARCHAR(191) allowed 191 characters).
ALTER TABLE sso_attr MODIFY name VARBINARY(191) NOT NULL;

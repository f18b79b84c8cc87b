-- Each user's attribute version floor: at least the version of every attribute row of the user
-- (user or session scope) that a deletion or the purger removed, and every deletion's tombstone.
-- A row inserted later takes a version above it, so that a name deleted and created again never
-- gets a version below its tombstone, whatever the database clock says. Rows of a deleted user
-- go with the user: a new user has a new id.
ALTER TABLE sso_user ADD COLUMN IF NOT EXISTS attr_version_floor BIGINT NOT NULL DEFAULT 0;

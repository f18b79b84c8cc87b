package persist

import (
	"strings"
	"time"

	"github.com/attrcache/attrcache"
)

// attrColumns are the columns queryAttrs reads, in its order.
const attrColumns = `user_id, ust_hash, name, value, is_encrypted,
	creation_time, last_modified, expiration_time, version`

// versionClock is the SQL expression of the version clock: microseconds since the Unix epoch at
// the start of the statement, by the database's clock. Computed from UTC_TIMESTAMP, it depends on
// no time zone and does not step back when daylight saving time ends.
const versionClock = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))"

// versionVar is the session variable that holds the version of the rows a write inserts, set by
// versionFloorStmt in the write's transaction just before its upserts.
const versionVar = "@attrcache_attr_version"

// versionFloorStmt returns the statement that sets versionVar for a write of the rows of n users,
// whose ids are its arguments: the version clock's time, or one above the highest
// attr_version_floor of those users when that is higher (0 when none of them exists, so that the
// insert fails on its foreign key). Its read locks the users' rows in share mode until the
// transaction ends: every deleter of attribute rows raises the floor under the user's row's lock
// before it deletes, so a deletion either committed before this read, which then sees its floor,
// or waits for this write to commit, and its tombstone is above the rows written here.
func versionFloorStmt(n int) string {
	return "SELECT COALESCE(GREATEST(" + versionClock + ", MAX(attr_version_floor) + 1), 0) INTO " + versionVar +
		" FROM sso_user WHERE " + inList("user_id", n) + " LOCK IN SHARE MODE"
}

// usersOf returns the distinct user ids of sorted, rows in primary-key order.
func usersOf(sorted []attrRow) []any {
	var users []any
	for i, row := range sorted {
		if i == 0 || row.scope.UserID != sorted[i-1].scope.UserID {
			users = append(users, row.scope.UserID)
		}
	}
	return users
}

// insertAttrsPrefix starts a statement that inserts rows of attrRowPlaceholders, each with the
// version versionFloorStmt set.
const (
	insertAttrsPrefix = `INSERT INTO sso_attr (user_id, ust_hash, name, value, is_encrypted,
	creation_time, last_modified, expiration_time, version) VALUES `
	attrRowPlaceholders = "(?, ?, ?, ?, ?, ?, ?, ?, " + versionVar + ")"
)

// insertAttrsStmt returns the statement that inserts batch, each row created and last modified
// at its own now, and returns the rows as stored (attrColumns), and its arguments. It runs after
// versionFloorStmt of batch's users, in the same transaction.
//
// With updateExisting, an existing row is updated instead: one that has expired at the new row's
// now (its last_modified) is replaced as if absent (creation time and expiration time included);
// a live one keeps its creation time, and its expiration time unless the item gives ExpiresAt.
// An updated row's version grows, to at least its version + 1: it holds the row's lock by then,
// so no deletion of the row can come between the version it read and the one it writes.
// MariaDB applies the assignments of ON DUPLICATE KEY UPDATE in order, each seeing the new values
// of those before it, so that expiration_time, which the others test, is assigned last; RETURNING
// gives each row as the statement left it, updated ones included.
func insertAttrsStmt(batch []attrRow, onExisting onExistingRow) (string, []any) {
	var stmt strings.Builder
	stmt.WriteString(insertAttrsPrefix)
	args := make([]any, 0, 8*len(batch)+2)
	var expiryGiven []attrKey
	for i, row := range batch {
		if i > 0 {
			stmt.WriteString(", ")
		}
		stmt.WriteString(attrRowPlaceholders)
		expiresAt := attrcache.NeverExpires
		if row.item.ExpiresAt != nil {
			expiresAt = *row.item.ExpiresAt
			expiryGiven = append(expiryGiven, row.key())
		}
		args = append(args, row.scope.UserID, row.scope.Session, row.item.Name, row.item.Value,
			row.item.IsEncrypted, row.now, row.now, expiresAt)
	}
	if onExisting == updateExisting {
		given, givenArgs := keysOfMany(expiryGiven)
		stmt.WriteString(` ON DUPLICATE KEY UPDATE
			creation_time = IF(expiration_time <= VALUES(last_modified), VALUES(creation_time), creation_time),
			value = VALUES(value),
			is_encrypted = VALUES(is_encrypted),
			last_modified = VALUES(last_modified),
			version = GREATEST(version + 1, ` + versionVar + `),
			expiration_time = IF(expiration_time <= VALUES(last_modified) OR (` + given + `),
				VALUES(expiration_time), expiration_time)`)
		args = append(args, givenArgs...)
	}
	stmt.WriteString(" RETURNING " + attrColumns)
	return stmt.String(), args
}

// readBackStmt returns the query of the attrColumns of the rows matching the condition keys.
func readBackStmt(keys string) string {
	return "SELECT " + attrColumns + " FROM sso_attr WHERE " + keys
}

// attrKey is the primary key of a row of sso_attr.
type attrKey struct {
	scope attrcache.AttrScope
	name  string
}

// keysOfMany returns the condition that matches the rows of keys, of any scopes, and its
// arguments: FALSE when there are none.
func keysOfMany(keys []attrKey) (string, []any) {
	var scopes []attrcache.AttrScope
	names := make(map[attrcache.AttrScope][]string)
	for _, key := range keys {
		if _, seen := names[key.scope]; !seen {
			scopes = append(scopes, key.scope)
		}
		names[key.scope] = append(names[key.scope], key.name)
	}
	if len(scopes) == 0 {
		return "FALSE", nil
	}
	conds := make([]string, len(scopes))
	args := make([]any, 0, 2*len(scopes)+len(keys))
	for i, scope := range scopes {
		cond, condArgs := keysOf(scope, names[scope])
		conds[i] = "(" + cond + ")"
		args = append(args, condArgs...)
	}
	return strings.Join(conds, " OR "), args
}

// keysOf returns the condition that matches the rows of scope with the given names, and its
// arguments.
func keysOf(scope attrcache.AttrScope, names []string) (string, []any) {
	args := make([]any, 0, 2+len(names))
	args = append(args, scope.UserID, scope.Session)
	for _, name := range names {
		args = append(args, name)
	}
	return "user_id = ? AND ust_hash = ? AND " + inList("name", len(names)), args
}

// attrsOfLockedUser returns the condition, on sso_attr aliased "a" in a subquery of an UPDATE of
// scope's user's row of sso_user, that matches the rows of scope with the given names, and its
// arguments. The condition refers to the row being updated, so the subquery runs, and locks those
// rows, only once the UPDATE holds the user's row: the user before the attributes, the lock order
// of every write.
func attrsOfLockedUser(scope attrcache.AttrScope, names []string) (string, []any) {
	args := make([]any, 0, 1+len(names))
	args = append(args, scope.Session)
	for _, name := range names {
		args = append(args, name)
	}
	return "a.user_id = sso_user.user_id AND a.ust_hash = ? AND " + inList("a.name", len(names)), args
}

// liveAt returns the condition that keeps the rows of sso_attr that are live at now, and its
// arguments: not expired and, for a session scope, of a session that has not ended.
func liveAt(scope attrcache.AttrScope, now time.Time) (string, []any) {
	if !scope.IsSession() {
		return "expiration_time > ?", []any{now}
	}
	return `expiration_time > ? AND EXISTS (SELECT 1 FROM sso_session s
		WHERE s.ust_hash = sso_attr.ust_hash AND s.user_id = sso_attr.user_id AND s.expiration_time > ?)`,
		[]any{now, now}
}

// inList returns "column IN (?, …)" with n placeholders, or FALSE when n is 0.
func inList(column string, n int) string {
	if n == 0 {
		return "FALSE"
	}
	return column + " IN (?" + strings.Repeat(", ?", n-1) + ")"
}

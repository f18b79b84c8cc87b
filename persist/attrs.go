package persist

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
)

// Attributes live in sso_attr, keyed by (user_id, ust_hash, name); ust_hash is the session's
// hash for a session attribute and "" for a user attribute.
//
// Every write locks its rows in primary-key order (user, session hash, name, in byte order), so
// that concurrent writes of the same keys wait for each other instead of deadlocking. A write to a
// session's attributes first takes a shared lock on the live session row, which DeleteSession and
// the purger take before the attributes too.
//
// Versions come from the version clock, the database's microseconds since the Unix epoch, and
// never go backwards for a key, whatever that clock does: an update sets version =
// GREATEST(version + 1, clock); a deletion raises its user's attr_version_floor (sso_user) to its
// tombstone, GREATEST(floor + 1, clock, highest deleted version + 1); an inserted row gets
// GREATEST(clock, floor + 1). The purger, and CreateAttrs over expired rows, raise the floor to
// the versions they delete (a session's end raises nothing: its scope never comes back). Each of
// those locks the user's row before the attribute rows, and an insert holds a shared lock on it
// (the foreign key's check) from before it touches its row until it commits: a deletion of the
// user's rows has raised the floor and committed before the insert's stamp reads it, or waits
// for the insert to commit and gives a tombstone above the inserted row.
//
// The lists of keys (one per call, or per group-commit batch) go into one statement each:
// MaxAttrItems keys fit in any server's default max_allowed_packet. The rows written, values and
// all, are split into as many statements as the packet size needs.
//
// SetAttrs of user attributes, alone or in a group-commit batch, sends those same statements —
// START TRANSACTION, the upsert, the UPDATE that stamps the versions, the SELECT that reads the
// rows back, COMMIT — together, in one round trip instead of five (onetrip.go): each round trip
// costs more than the statement it carries, and nothing of a user scope's write depends on an
// answer before the COMMIT. A session scope's write needs lockSessions' answer before its upsert,
// and a write too large for one packet needs several upserts: those go statement by statement.

// attrColumns are the columns queryAttrs reads, in its order.
const attrColumns = `user_id, ust_hash, name, value, is_encrypted,
	creation_time, last_modified, expiration_time, version`

// versionClock is the SQL expression of the version clock: microseconds since the Unix epoch at
// the start of the statement, by the database's clock. Computed from UTC_TIMESTAMP, it depends on
// no time zone and does not step back when daylight saving time ends.
const versionClock = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))"

// insertAttrsPrefix starts a statement that inserts rows of attrRowPlaceholders. A new row has
// version 0 until stampVersions gives it its version.
const (
	insertAttrsPrefix = `INSERT INTO sso_attr (user_id, ust_hash, name, value, is_encrypted,
	creation_time, last_modified, expiration_time, version) VALUES `
	attrRowPlaceholders = "(?, ?, ?, ?, ?, ?, ?, ?, 0)"
)

// Statement size estimates, to keep a write within the largest packet the server accepts.
// Interpolated strings are quoted and escaped, which at worst doubles them.
const (
	// attrRowOverheadBytes bounds what a row adds to a statement besides its strings: three
	// quoted dates, a flag, a version, the placeholders' punctuation.
	attrRowOverheadBytes = 160
	// attrStmtOverheadBytes bounds the text of a write statement besides its rows.
	attrStmtOverheadBytes = 1024
)

// onExistingRow says what a write does with an item whose key already has a row.
type onExistingRow int

const (
	// failOnExisting makes any existing row a conflict (ErrConflict).
	failOnExisting onExistingRow = iota
	// updateExisting updates the row as SetAttrs says.
	updateExisting
)

// SetAttrs creates the items that are absent and updates the others, in one transaction, and
// returns them as stored, in the order of items. Of items repeating a name, the last one wins
// and takes the place of the first.
//
// An expired row counts as absent: it is replaced, creation time included. A created attribute
// never expires unless its item gives ExpiresAt; an updated one keeps its expiration time unless
// its item gives one. Value, IsEncrypted and LastModified (now) are always written.
//
// A session scope's session must exist and not have ended at now, and a user scope's user must
// exist, else attrcache.ErrNotFound. No items: no attributes and no error.
//
// With group commit on (WithGroupCommit), a call that writes one attribute is committed together
// with the concurrent calls of other attributes, and returns once that transaction has committed;
// what it stores and returns, and its errors, are those of a call of its own.
func (db *DB) SetAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	items = lastItemPerName(items)
	if len(items) == 0 {
		return nil, nil
	}
	stored, err := db.setAttrs(ctx, scope, items, now)
	if err != nil {
		return nil, fmt.Errorf("persist: set attributes of %s: %w", scope.UserID, err)
	}
	return stored, nil
}

// setAttrs does the work of SetAttrs, for items with distinct names: through the group
// committer for one item when it is on and open, else in a transaction of its own.
func (db *DB) setAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	if len(items) == 1 && db.committer != nil {
		stored, err := db.committer.set(ctx, attrRow{scope: scope, item: items[0], now: now})
		if !errors.Is(err, errCommitterClosed) {
			if err != nil {
				return nil, err
			}
			return []*attrcache.Attr{stored}, nil
		}
	}
	return db.setAttrsAlone(ctx, scope, items, now)
}

// setAttrsAlone does the work of SetAttrs, for items with distinct names, in a transaction of
// its own: in one round trip for a user scope when it fits in a packet.
func (db *DB) setAttrsAlone(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	if !scope.IsSession() && !db.quota.on() {
		keys := keysOfItems(scope, items)
		byKey, token, fits, err := db.upsertUserAttrs(ctx, rowsOf(scope, items, now))
		if fits {
			if err != nil {
				return nil, err
			}
			db.noteLogged(ctx, token)
			return inKeyOrder(byKey, keys), nil
		}
	}
	var stored []*attrcache.Attr
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		if stored, err = db.setAttrsIn(ctx, tx, scope, items, now); err != nil {
			return err
		}
		token, err = logChanges(ctx, tx, attrSets(stored))
		return err
	})
	if err == nil {
		db.noteLogged(ctx, token)
	}
	return stored, err
}

// setAttrsIn does the work of SetAttrs, for items with distinct names, in tx.
func (db *DB) setAttrsIn(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	if err := db.lockQuotaOrNotFound(ctx, tx, scope.UserID); err != nil {
		return nil, err
	}
	if err := lockLiveSession(ctx, tx, scope, now); err != nil {
		return nil, err
	}
	if err := db.checkQuota(ctx, tx, scope, items, now); err != nil {
		return nil, err
	}
	if err := db.writeAttrs(ctx, tx, rowsOf(scope, items, now), updateExisting); err != nil {
		return nil, err
	}
	return stampAndReadBack(ctx, tx, scope, items)
}

// CreateAttrs creates every item in one transaction and returns them as stored, in the order of
// items, each with LastModified equal to CreationTime (now). If an item's name has a row that
// has not expired at now, or repeats another item's, it writes nothing and gives
// attrcache.ErrConflict; expired rows of those names are replaced. A created attribute never
// expires unless its item gives ExpiresAt.
//
// A session scope's session must exist and not have ended at now, and a user scope's user must
// exist, else attrcache.ErrNotFound. No items: no attributes and no error.
func (db *DB) CreateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	if len(items) == 0 {
		return nil, nil
	}
	if len(lastItemPerName(items)) != len(items) {
		return nil, fmt.Errorf("persist: create attributes of %s: a name is given twice: %w", scope.UserID, attrcache.ErrConflict)
	}
	var created []*attrcache.Attr
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockQuotaOrNotFound(ctx, tx, scope.UserID); err != nil {
			return err
		}
		if err := lockLiveSession(ctx, tx, scope, now); err != nil {
			return err
		}
		if err := raiseVersionFloorToExpired(ctx, tx, scope, itemNames(items), now); err != nil {
			return err
		}
		keys, keyArgs := keysOf(scope, itemNames(items))
		if _, err := tx.ExecContext(ctx, "DELETE FROM sso_attr WHERE "+keys+" AND expiration_time <= ?",
			append(keyArgs, now)...); err != nil {
			return mapError(err)
		}
		if err := db.checkQuota(ctx, tx, scope, items, now); err != nil {
			return err
		}
		if err := db.writeAttrs(ctx, tx, rowsOf(scope, items, now), failOnExisting); err != nil {
			return err
		}
		var err error
		if created, err = stampAndReadBack(ctx, tx, scope, items); err != nil {
			return err
		}
		token, err = logChanges(ctx, tx, attrSets(created))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: create attributes of %s: %w", scope.UserID, err)
	}
	db.noteLogged(ctx, token)
	return created, nil
}

// UpdateAttrs updates, in one transaction, the items whose attributes exist and have not expired
// at now, ignoring the others, and returns those it updated as stored, in the order of items. Of
// items repeating a name, the last one wins and takes the place of the first. Value, IsEncrypted
// and LastModified (now) are always written, the expiration time only when the item gives
// ExpiresAt.
//
// A session scope's session must exist and not have ended at now, else attrcache.ErrNotFound; a
// user that does not exist has no attributes to update.
func (db *DB) UpdateAttrs(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error) {
	items = lastItemPerName(items)
	if len(items) == 0 {
		return nil, nil
	}
	var updated []*attrcache.Attr
	var token int64
	err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
		updated, token = nil, 0 // what an attempt rolled back at its commit had updated
		if found, err := db.lockUserBeforeAttrs(ctx, tx, scope.UserID); err != nil || !found {
			return err // a user that does not exist has no attributes
		}
		if err := lockLiveSession(ctx, tx, scope, now); err != nil {
			return err
		}
		live, err := lockLiveNames(ctx, tx, scope, itemNames(items), now)
		if err != nil {
			return err
		}
		existing := slices.DeleteFunc(slices.Clone(items), func(item attrcache.AttrWrite) bool {
			return !live[item.Name]
		})
		if len(existing) == 0 {
			return nil
		}
		if err := db.checkQuota(ctx, tx, scope, existing, now); err != nil {
			return err
		}
		// Every row is live and locked: the upsert only updates.
		if err := db.writeAttrs(ctx, tx, rowsOf(scope, existing, now), updateExisting); err != nil {
			return err
		}
		if updated, err = stampAndReadBack(ctx, tx, scope, existing); err != nil {
			return err
		}
		token, err = logChanges(ctx, tx, attrSets(updated))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("persist: update attributes of %s: %w", scope.UserID, err)
	}
	db.noteLogged(ctx, token)
	return updated, nil
}

// Attrs returns the named attributes of scope that are live at now, keyed by name; missing and
// expired ones, and those of a session that has ended, are left out.
func (db *DB) Attrs(ctx context.Context, scope attrcache.AttrScope, names []string, now time.Time) (map[string]*attrcache.Attr, error) {
	if len(names) == 0 {
		return map[string]*attrcache.Attr{}, nil
	}
	keys, args := keysOf(scope, names)
	live, liveArgs := liveAt(scope, now)
	attrs, err := queryAttrs(ctx, db.db, "SELECT "+attrColumns+" FROM sso_attr WHERE "+keys+" AND "+live,
		append(args, liveArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("persist: attributes of %s: %w", scope.UserID, err)
	}
	return attrs, nil
}

// AttrNames returns the names of the attributes of scope that are live at now, in no particular
// order; none for a session that has ended.
func (db *DB) AttrNames(ctx context.Context, scope attrcache.AttrScope, now time.Time) ([]string, error) {
	live, liveArgs := liveAt(scope, now)
	query := "SELECT name FROM sso_attr WHERE user_id = ? AND ust_hash = ? AND " + live
	names, err := queryNames(ctx, db.db, query, append([]any{scope.UserID, scope.Session}, liveArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("persist: attribute names of %s: %w", scope.UserID, err)
	}
	return names, nil
}

// DeleteAttrs deletes the named attributes of scope, expired ones too, in one transaction;
// missing ones are ignored. It returns a tombstone version: above the version of every row it
// deleted and every earlier tombstone of the user, at least the version clock, and below the
// version of any attribute of the user created later. No names: tombstone 0 and nothing deleted.
func (db *DB) DeleteAttrs(ctx context.Context, scope attrcache.AttrScope, names []string, _ time.Time) (tombstone int64, err error) {
	if len(names) == 0 {
		return 0, nil
	}
	keys, args := keysOf(scope, names)
	var token int64
	err = db.inWriteTx(ctx, func(tx *sql.Tx) error {
		// The user's row first, then the attributes: the lock order of every write.
		userAttrs, userAttrsArgs := attrsOfLockedUser(scope, names)
		_, err := tx.ExecContext(ctx, `UPDATE sso_user SET attr_version_floor = GREATEST(attr_version_floor + 1, `+
			versionClock+`, COALESCE((SELECT MAX(a.version) + 1 FROM sso_attr a WHERE `+userAttrs+`), 0))
			WHERE user_id = ?`, append(userAttrsArgs, scope.UserID)...)
		if err != nil {
			return mapError(err)
		}
		// A user that does not exist has no rows to delete, and the clock's tombstone.
		err = tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(attr_version_floor), "+versionClock+
			") FROM sso_user WHERE user_id = ?", scope.UserID).Scan(&tombstone)
		if err != nil {
			return mapError(err)
		}
		if _, err = tx.ExecContext(ctx, "DELETE FROM sso_attr WHERE "+keys, args...); err != nil {
			return mapError(err)
		}
		token, err = logChanges(ctx, tx, attrDeletes(scope, names, tombstone))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("persist: delete attributes of %s: %w", scope.UserID, err)
	}
	db.noteLogged(ctx, token)
	return tombstone, nil
}

// lockUserBeforeAttrs locks userID's row of sso_user until tx ends, before the transaction locks
// any of the user's attributes, and reports whether the user exists; errors are mapped. With a
// quota on, it is lockQuota's exclusive lock; else a shared one, which the upsert's foreign key
// check would take anyway, but only after the rows it locks first: taken before them, it keeps
// the user-then-attributes order of the deletions, which lock the user's row exclusively.
func (db *DB) lockUserBeforeAttrs(ctx context.Context, tx *sql.Tx, userID string) (found bool, err error) {
	if db.quota.on() {
		return db.lockQuota(ctx, tx, userID)
	}
	var locked string
	err = tx.QueryRowContext(ctx, "SELECT user_id FROM sso_user WHERE user_id = ? LOCK IN SHARE MODE", userID).Scan(&locked)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, mapError(err)
	}
	return true, nil
}

// raiseVersionFloorToExpired raises the attr_version_floor of scope's user to the highest version
// of the rows of scope with the given names that have expired at now, before the transaction
// deletes them, and holds the lock of the user's row until it ends. Errors are already mapped.
func raiseVersionFloorToExpired(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, names []string, now time.Time) error {
	userAttrs, args := attrsOfLockedUser(scope, names)
	_, err := tx.ExecContext(ctx, `UPDATE sso_user SET attr_version_floor = GREATEST(attr_version_floor,
		COALESCE((SELECT MAX(a.version) FROM sso_attr a WHERE `+userAttrs+` AND a.expiration_time <= ?), 0))
		WHERE user_id = ?`, append(args, now, scope.UserID)...)
	return mapError(err)
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

// lockLiveSession checks, for a session scope, that the session exists and has not ended at now,
// and holds a shared lock on its row until the transaction ends, so that the session cannot be
// deleted while attributes are written to it. A session that is missing or has ended gives
// attrcache.ErrNotFound. A user scope needs no check.
func lockLiveSession(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, now time.Time) error {
	if !scope.IsSession() {
		return nil
	}
	ends, err := lockSessions(ctx, tx, []attrcache.AttrScope{scope})
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	return liveSession(ends, scope, now)
}

// lockSessions holds a shared lock on the session rows of the session scopes among scopes until
// the transaction ends, and returns when each of those sessions ends, keyed by scope; a session
// that does not exist, or belongs to another user, is not in the map. Errors are already mapped.
func lockSessions(ctx context.Context, tx *sql.Tx, scopes []attrcache.AttrScope) (map[attrcache.AttrScope]time.Time, error) {
	var hashes []any
	for _, scope := range scopes {
		if scope.IsSession() {
			hashes = append(hashes, scope.Session)
		}
	}
	ends := make(map[attrcache.AttrScope]time.Time, len(hashes))
	if len(hashes) == 0 {
		return ends, nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT user_id, ust_hash, expiration_time FROM sso_session WHERE "+
		inList("ust_hash", len(hashes))+" LOCK IN SHARE MODE", hashes...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var scope attrcache.AttrScope
		var endsAt time.Time
		if err := rows.Scan(&scope.UserID, &scope.Session, &endsAt); err != nil {
			return nil, mapError(err)
		}
		ends[scope] = endsAt
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return ends, nil
}

// liveSession returns nil when the session of scope, by ends (from lockSessions), has not ended
// at now, else attrcache.ErrNotFound.
func liveSession(ends map[attrcache.AttrScope]time.Time, scope attrcache.AttrScope, now time.Time) error {
	if endsAt, found := ends[scope]; !found || !now.Before(endsAt) {
		return fmt.Errorf("session: %w", attrcache.ErrNotFound)
	}
	return nil
}

// lockLiveNames locks the rows of scope with the given names and returns the names of those that
// have not expired at now.
func lockLiveNames(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, names []string, now time.Time) (map[string]bool, error) {
	keys, args := keysOf(scope, names)
	live, err := queryNames(ctx, tx, "SELECT name FROM sso_attr WHERE "+keys+" AND expiration_time > ? FOR UPDATE",
		append(args, now)...)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(live))
	for _, name := range live {
		set[name] = true
	}
	return set, nil
}

// attrRow is one row to write: an item of a scope, written at now.
type attrRow struct {
	scope attrcache.AttrScope
	item  attrcache.AttrWrite
	now   time.Time
}

// sortedRows returns a copy of rows in primary-key order (compareAttrRows), allocated once.
func sortedRows(rows []attrRow) []attrRow {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, compareAttrRows)
	return sorted
}

// key returns the primary key of the row.
func (r attrRow) key() attrKey { return attrKey{scope: r.scope, name: r.item.Name} }

// compareAttrRows orders rows as sso_attr's primary key does: by user, session hash, then name,
// in byte order.
func compareAttrRows(a, b attrRow) int {
	return cmp.Or(strings.Compare(a.scope.UserID, b.scope.UserID),
		strings.Compare(string(a.scope.Session), string(b.scope.Session)),
		strings.Compare(a.item.Name, b.item.Name))
}

// rowsOf returns the rows that write items into scope at now.
func rowsOf(scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) []attrRow {
	rows := make([]attrRow, len(items))
	for i, item := range items {
		rows[i] = attrRow{scope: scope, item: item, now: now}
	}
	return rows
}

// writeAttrs inserts rows (distinct keys) sorted in primary-key order, so that concurrent writes
// lock their rows in the same order, and split into statements that each fit in the largest
// packet the server accepts. onExisting says what happens to a row whose key is taken.
func (db *DB) writeAttrs(ctx context.Context, tx *sql.Tx, rows []attrRow, onExisting onExistingRow) error {
	sorted := sortedRows(rows)
	for _, batch := range splitBySize(sorted, db.maxPacket-attrStmtOverheadBytes, attrRowBytes) {
		stmt, args := insertAttrsStmt(batch, onExisting)
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return mapError(err)
		}
	}
	return nil
}

// insertAttrsStmt returns the statement that inserts batch, each row created and last modified
// at its own now, and its arguments.
//
// With updateExisting, an existing row is updated instead: one that has expired at the new row's
// now (its last_modified) is replaced as if absent (creation time and expiration time included);
// a live one keeps its creation time, and its expiration time unless the item gives ExpiresAt.
// An updated row's version grows, to GREATEST(version + 1, clock): it holds the row's lock by
// then, so no deletion of the row can come between the version it read and the one it writes.
// MariaDB applies the assignments of ON DUPLICATE KEY UPDATE in order, each seeing the new values
// of those before it, so that expiration_time, which the others test, is assigned last.
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
			version = GREATEST(version + 1, ` + versionClock + `),
			expiration_time = IF(expiration_time <= VALUES(last_modified) OR (` + given + `),
				VALUES(expiration_time), expiration_time)`)
		args = append(args, givenArgs...)
	}
	return stmt.String(), args
}

// stampAndReadBack gives the rows of scope named by items that the transaction inserted their
// versions (stampVersions) and returns them as stored, in the order of items. Every row must exist.
func stampAndReadBack(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, items []attrcache.AttrWrite) ([]*attrcache.Attr, error) {
	keys := keysOfItems(scope, items)
	byKey, err := stampAndReadBackKeys(ctx, tx, keys)
	if err != nil {
		return nil, err
	}
	return inKeyOrder(byKey, keys), nil
}

// keysOfItems returns the keys of items in scope, in the order of items.
func keysOfItems(scope attrcache.AttrScope, items []attrcache.AttrWrite) []attrKey {
	keys := make([]attrKey, len(items))
	for i, item := range items {
		keys[i] = attrKey{scope: scope, name: item.Name}
	}
	return keys
}

// inKeyOrder returns the attributes of byKey in the order of keys.
func inKeyOrder(byKey map[attrKey]*attrcache.Attr, keys []attrKey) []*attrcache.Attr {
	stored := make([]*attrcache.Attr, len(keys))
	for i, key := range keys {
		stored[i] = byKey[key]
	}
	return stored
}

// stampAndReadBackKeys gives the rows of keys, of any scopes, that the transaction inserted their
// versions (stampVersions) and returns them as stored. Every row must exist.
func stampAndReadBackKeys(ctx context.Context, tx *sql.Tx, keys []attrKey) (map[attrKey]*attrcache.Attr, error) {
	where, args := keysOfMany(keys)
	if err := stampVersions(ctx, tx, where, args); err != nil {
		return nil, err
	}
	attrs, err := queryAttrRows(ctx, tx, readBackStmt(where), args...)
	if err != nil {
		return nil, err
	}
	return attrsByKey(attrs, keys)
}

// attrsByKey returns attrs, read back after a write of keys, keyed by key; an error when one of
// keys is missing.
func attrsByKey(attrs []*attrcache.Attr, keys []attrKey) (map[attrKey]*attrcache.Attr, error) {
	byKey := make(map[attrKey]*attrcache.Attr, len(attrs))
	for _, a := range attrs {
		byKey[attrKey{scope: a.Scope, name: a.Name}] = a
	}
	for _, key := range keys {
		if byKey[key] == nil {
			return nil, fmt.Errorf("attribute %q was not stored", key.name)
		}
	}
	return byKey, nil
}

// stampVersions gives the rows matching keys (with their arguments) that the transaction inserted
// (version 0; an updated row has its version from the upsert already) their versions: the version
// clock's time, or one above their user's attr_version_floor when that is higher. The insert has
// locked the user's row in share mode (its foreign key's check) before touching its own row, so
// every deletion that raised the floor before the row was stamped has committed, and the floor
// read (a locking read, as every subquery of an UPDATE) is at least its tombstone. A row the
// upsert updated is only looked at, not written again.
func stampVersions(ctx context.Context, tx *sql.Tx, keys string, args []any) error {
	_, err := tx.ExecContext(ctx, stampVersionsStmt(keys), args...)
	return mapError(err)
}

// stampVersionsStmt returns the statement of stampVersions for the condition keys.
func stampVersionsStmt(keys string) string {
	return "UPDATE sso_attr SET version = GREATEST(version + 1, " + versionClock + `,
		(SELECT u.attr_version_floor + 1 FROM sso_user u WHERE u.user_id = sso_attr.user_id))
		WHERE (` + keys + ") AND version = 0"
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

// queryAttrs runs a query of attrColumns, of one scope, and returns its attributes keyed by
// name. Errors are already mapped.
func queryAttrs(ctx context.Context, q querier, query string, args ...any) (map[string]*attrcache.Attr, error) {
	list, err := queryAttrRows(ctx, q, query, args...)
	if err != nil {
		return nil, err
	}
	attrs := make(map[string]*attrcache.Attr, len(list))
	for _, a := range list {
		attrs[a.Name] = a
	}
	return attrs, nil
}

// queryAttrRows runs a query of attrColumns and returns its attributes. Errors are already
// mapped.
func queryAttrRows(ctx context.Context, q querier, query string, args ...any) ([]*attrcache.Attr, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	attrs, err := scanAttrRows(rows)
	if err != nil {
		return nil, mapError(err)
	}
	return attrs, nil
}

// scanAttrRows reads the attributes of rows, a result set of attrColumns, to its end; it does
// not close rows. Errors are not mapped.
func scanAttrRows(rows *sql.Rows) ([]*attrcache.Attr, error) {
	var attrs []*attrcache.Attr
	for rows.Next() {
		var a attrcache.Attr
		err := rows.Scan(&a.Scope.UserID, &a.Scope.Session, &a.Name, &a.Value, &a.IsEncrypted,
			&a.CreationTime, &a.LastModified, &a.ExpirationTime, &a.Version)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, &a)
	}
	return attrs, rows.Err()
}

// queryNames runs a query of one column of names and returns them. Errors are already mapped.
func queryNames(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, mapError(err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return names, nil
}

// lastItemPerName returns items with each name once: a repeated name takes the fields of its last
// item at the place of its first.
func lastItemPerName(items []attrcache.AttrWrite) []attrcache.AttrWrite {
	distinct := make([]attrcache.AttrWrite, 0, len(items))
	at := make(map[string]int, len(items))
	for _, item := range items {
		if i, seen := at[item.Name]; seen {
			distinct[i] = item
			continue
		}
		at[item.Name] = len(distinct)
		distinct = append(distinct, item)
	}
	return distinct
}

// itemNames returns the names of items, in their order.
func itemNames(items []attrcache.AttrWrite) []string {
	names := make([]string, len(items))
	for i, item := range items {
		names[i] = item.Name
	}
	return names
}

// attrRowBytes bounds what row adds to a write statement. Its key may be there twice: in the row
// and in the ON DUPLICATE KEY UPDATE clause.
func attrRowBytes(row attrRow) int {
	return attrRowOverheadBytes + 2*len(row.item.Value) +
		4*(len(row.scope.UserID)+len(row.scope.Session)+len(row.item.Name))
}

// splitBySize cuts items, keeping their order, into runs whose sizes add up to at most limit; an
// item bigger than limit makes a run of its own.
func splitBySize[T any](items []T, limit int, size func(T) int) [][]T {
	var runs [][]T
	start, total := 0, 0
	for i, item := range items {
		n := size(item)
		if i > start && total+n > limit {
			runs = append(runs, items[start:i])
			start, total = i, 0
		}
		total += n
	}
	if start < len(items) {
		runs = append(runs, items[start:])
	}
	return runs
}

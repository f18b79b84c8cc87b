package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// lockUserBeforeAttrs locks userID's row of sso_user until tx ends, before the transaction locks
// any of the user's attributes, and reports whether the user exists; errors are mapped. With a
// quota on, it is lockQuota's exclusive lock; else a shared one, which the upsert's foreign key
// check would take anyway, but only after the rows it locks first: taken before them, it keeps
// the user-then-attributes order of the deletions, which lock the user's row exclusively.
func (db *DB) lockUserBeforeAttrs(ctx context.Context, tx *sql.Tx, userID string) (found bool, err error) {
	if db.quota.on() {
		return db.lockQuota(ctx, tx, userID)
	}
	return lockUserRow(ctx, tx, userID, "LOCK IN SHARE MODE")
}

// lockUserRow locks userID's row of sso_user with lock ("FOR UPDATE" or "LOCK IN SHARE MODE")
// until tx ends, and reports whether the user exists; errors are mapped.
func lockUserRow(ctx context.Context, tx *sql.Tx, userID, lock string) (found bool, err error) {
	var locked string
	err = tx.QueryRowContext(ctx, "SELECT user_id FROM sso_user WHERE user_id = ? "+lock, userID).Scan(&locked)
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

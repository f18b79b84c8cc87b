package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
)

// Writes of attributes lock rows in primary-key order (user, session hash, name, in byte order),
// and a write to a session's attributes first takes a shared lock on the live session row, as
// DeleteSession and the purger do. Whatever deletes rows locks the user's sso_user row before
// them and raises its attr_version_floor, so that a key's version never goes backwards
// (ARCHITECTURE.md, "Attribute versions").

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

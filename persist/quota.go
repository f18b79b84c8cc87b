package persist

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
)

// Quota bounds what one user may store. A user's usage is their attributes that are live: user
// attributes that have not expired, and session attributes that have not expired of their
// sessions that have not ended; their bytes are those of the values as stored (ciphertext when
// encrypted), the sso_attr.value_bytes column.
//
// A write that would leave the user with more than a limit, and more than before the write,
// fails with attrcache.ErrQuotaExceeded and stores nothing: a write that grows nothing (a value
// replaced by one no larger) is never refused, so that a user left over a lowered limit can still
// shrink. Each write of attributes first locks the user's sso_user row (FOR UPDATE) and then
// sums the usage in the same transaction, so that the writes of one user that may grow it take
// turns: two of them cannot both fit under a limit that has room for one.
type Quota struct {
	// MaxAttrs is the most attributes a user may have; 0: no limit.
	MaxAttrs int
	// MaxBytes is the most bytes of values a user may have; 0: no limit.
	MaxBytes int64
}

// on reports whether q sets a limit.
func (q Quota) on() bool { return q.MaxAttrs > 0 || q.MaxBytes > 0 }

// quotaUsage is what a user holds, as Quota counts it.
type quotaUsage struct {
	attrs int64
	bytes int64
}

// exceeded reports whether going from before to after breaks a limit of q: after is over it and
// has grown.
func (q Quota) exceeded(before, after quotaUsage) bool {
	return (q.MaxAttrs > 0 && after.attrs > int64(q.MaxAttrs) && after.attrs > before.attrs) ||
		(q.MaxBytes > 0 && after.bytes > q.MaxBytes && after.bytes > before.bytes)
}

// lockQuota, with a quota on, locks userID's row of sso_user until tx ends, and reports whether
// the user exists; errors are mapped. With none, it does nothing and reports true.
func (db *DB) lockQuota(ctx context.Context, tx *sql.Tx, userID string) (found bool, err error) {
	if !db.quota.on() {
		return true, nil
	}
	return lockUserRow(ctx, tx, userID, "FOR UPDATE")
}

// lockQuotaOrNotFound is lockQuota, with attrcache.ErrNotFound for a user that does not exist.
func (db *DB) lockQuotaOrNotFound(ctx context.Context, tx *sql.Tx, userID string) error {
	found, err := db.lockQuota(ctx, tx, userID)
	if err == nil && !found {
		return fmt.Errorf("user: %w", attrcache.ErrNotFound)
	}
	return err
}

// checkQuota, with a quota on, fails with attrcache.ErrQuotaExceeded when writing items (distinct
// names) into scope at now would break it: each item replaces the live attribute of its name, if
// any, and is live after the write unless it expires by now. tx must hold lockQuota's lock (the sum is read after it, so no write of the user can
// have committed in between). With no quota on, it does nothing.
func (db *DB) checkQuota(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) error {
	if !db.quota.on() {
		return nil
	}
	var before quotaUsage
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(a.value_bytes), 0) FROM sso_attr a
		WHERE a.user_id = ? AND a.expiration_time > ? AND (a.ust_hash = '' OR EXISTS (SELECT 1 FROM sso_session s
			WHERE s.ust_hash = a.ust_hash AND s.user_id = a.user_id AND s.expiration_time > ?))`,
		scope.UserID, now, now).Scan(&before.attrs, &before.bytes)
	if err != nil {
		return mapError(err)
	}
	replaced, err := liveValueBytes(ctx, tx, scope, itemNames(items), now)
	if err != nil {
		return err
	}
	after := before
	for _, item := range items {
		if old, ok := replaced[item.Name]; ok {
			after.attrs--
			after.bytes -= old
		}
		if item.ExpiresAt == nil || item.ExpiresAt.After(now) { // live after the write
			after.attrs++
			after.bytes += int64(len(item.Value))
		}
	}
	if db.quota.exceeded(before, after) {
		return fmt.Errorf("%d attributes of %d bytes after the write, limits %d and %d: %w",
			after.attrs, after.bytes, db.quota.MaxAttrs, db.quota.MaxBytes, attrcache.ErrQuotaExceeded)
	}
	return nil
}

// liveValueBytes returns the sizes of the values of the attributes of scope called names that
// are live at now (the session of a session scope is known to be live), keyed by name. Errors
// are mapped.
func liveValueBytes(ctx context.Context, tx *sql.Tx, scope attrcache.AttrScope, names []string, now time.Time) (map[string]int64, error) {
	keys, args := keysOf(scope, names)
	rows, err := tx.QueryContext(ctx, "SELECT name, value_bytes FROM sso_attr WHERE "+keys+" AND expiration_time > ?",
		append(args, now)...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	sizes := make(map[string]int64, len(names))
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			return nil, mapError(err)
		}
		sizes[name] = size
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return sizes, nil
}

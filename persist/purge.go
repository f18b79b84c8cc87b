package persist

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
)

// PurgeExpired deletes the attributes that have expired at now, then the sessions that have
// ended at now together with their attributes, each in transactions of at most batch attributes
// or batch sessions, until none is left. It returns how many attributes (of either kind) and
// sessions it deleted, also when it stops early: at the first error, or when ctx ends. Rows that
// have expired are invisible to every other call already, so purging is only housekeeping.
func (db *DB) PurgeExpired(ctx context.Context, now time.Time, batch int) (attrs, sessions int, err error) {
	if batch <= 0 {
		return 0, 0, fmt.Errorf("persist: purge: batch is %d, want at least 1", batch)
	}
	// The expire events first: a row is purged only once its expiry is in the change feed.
	if !db.noFeed {
		if _, err := db.SequenceFeed(ctx, now, true); err != nil {
			return 0, 0, fmt.Errorf("persist: purge expired attributes: %w", err)
		}
	}
	for {
		n, err := db.purgeExpiredAttrs(ctx, now, batch)
		attrs += n
		if err != nil {
			return attrs, sessions, fmt.Errorf("persist: purge expired attributes: %w", err)
		}
		if n < batch {
			break
		}
	}
	for {
		ended, theirAttrs, err := db.purgeEndedSessions(ctx, now, batch)
		sessions += ended
		attrs += theirAttrs
		if err != nil {
			return attrs, sessions, fmt.Errorf("persist: purge ended sessions: %w", err)
		}
		if ended < batch {
			return attrs, sessions, nil
		}
	}
}

// purgeExpiredAttrs deletes at most batch attributes that have expired at now and whose expire
// event is in the change feed (sso_feed_expired; any, without the feed), oldest expiry first, with
// those marks, and returns how many it deleted.
//
// It first picks them (a plain read), then raises their users' attr_version_floor to the highest
// version of each user's rows that have expired at now, locking the users' rows (in key order)
// before those attribute rows, in the order every write takes, and then deletes the rows it
// picked that have still expired. A row written again in between is live, and stays.
func (db *DB) purgeExpiredAttrs(ctx context.Context, now time.Time, batch int) (deleted int, err error) {
	fed := expiryFed
	if db.noFeed {
		fed = "TRUE"
	}
	err = db.inWriteTx(ctx, func(tx *sql.Tx) error {
		deleted = 0 // what an attempt rolled back at its commit had counted
		keys, err := queryAttrKeys(ctx, tx,
			"SELECT user_id, ust_hash, name FROM sso_attr WHERE expiration_time <= ? AND "+fed+" ORDER BY expiration_time LIMIT ?",
			now, batch)
		if err != nil || len(keys) == 0 {
			return err
		}
		var users []any
		seen := make(map[string]bool)
		for _, key := range keys {
			if !seen[key.scope.UserID] {
				seen[key.scope.UserID] = true
				users = append(users, key.scope.UserID)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE sso_user SET attr_version_floor = GREATEST(attr_version_floor,
			COALESCE((SELECT MAX(a.version) FROM sso_attr a
				WHERE a.user_id = sso_user.user_id AND a.expiration_time <= ?), 0))
			WHERE `+inList("user_id", len(users)), append([]any{now}, users...)...)
		if err != nil {
			return mapError(err)
		}
		where, args := keysOfMany(keys)
		res, err := tx.ExecContext(ctx, "DELETE FROM sso_attr WHERE ("+where+") AND expiration_time <= ? AND "+fed,
			append(args, now)...)
		if err != nil {
			return mapError(err)
		}
		if deleted, err = rowsAffected(res); err != nil {
			return err
		}
		// The marks of these names that no row holds any more.
		_, err = tx.ExecContext(ctx, "DELETE FROM sso_feed_expired WHERE ("+where+`) AND NOT EXISTS (SELECT 1 FROM sso_attr a
			WHERE a.user_id = sso_feed_expired.user_id AND a.ust_hash = sso_feed_expired.ust_hash
				AND a.name = sso_feed_expired.name AND a.version = sso_feed_expired.version)`, args...)
		return mapError(err)
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}

// expiryFed is the condition that an sso_attr row's expiry is in the change feed.
const expiryFed = `EXISTS (SELECT 1 FROM sso_feed_expired e WHERE e.user_id = sso_attr.user_id
	AND e.ust_hash = sso_attr.ust_hash AND e.name = sso_attr.name AND e.version = sso_attr.version)`

// purgeEndedSessions deletes at most batch sessions that have ended at now, the earliest ended
// first, with their attributes, in one transaction, logging each attribute gone (attrsGone); it
// returns how many sessions and attributes it deleted. The sessions are locked before their
// attributes, in the order every writer of session attributes takes.
func (db *DB) purgeEndedSessions(ctx context.Context, now time.Time, batch int) (sessions, attrs int, err error) {
	err = db.inWriteTx(ctx, func(tx *sql.Tx) error {
		sessions, attrs = 0, 0 // what an attempt rolled back at its commit had counted
		ended, err := lockEndedSessions(ctx, tx, now, batch)
		if err != nil || len(ended) == 0 {
			return err
		}
		keys := make([]any, 0, 2*len(ended))
		hashes := make([]any, 0, len(ended))
		ends := make(map[attrcache.SessionHash]sql.NullTime, len(ended))
		for _, s := range ended {
			keys = append(keys, s.UserID, s.Hash)
			hashes = append(hashes, s.Hash)
			ends[s.Hash] = sql.NullTime{Time: s.End, Valid: true}
		}
		ofSessions := "(user_id, ust_hash) IN ((?, ?)" + strings.Repeat(", (?, ?)", len(ended)-1) + ")"
		gone, err := queryEach(ctx, tx, func(rows *sql.Rows) (goneAttr, error) {
			var scope attrcache.AttrScope
			var name string
			var version int64
			var expiresAt time.Time
			err := rows.Scan(&scope.UserID, &scope.Session, &name, &version, &expiresAt)
			return goneAttrOf(scope, name, version, expiresAt, ends[scope.Session]), err
		}, "SELECT user_id, ust_hash, name, version, expiration_time FROM sso_attr WHERE "+ofSessions+" FOR UPDATE", keys...)
		if err != nil {
			return err
		}
		if len(gone) > 0 {
			fed, err := takeExpiryMarks(ctx, tx, gone, ofSessions, keys)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, "DELETE FROM sso_attr WHERE "+ofSessions, keys...)
			if err != nil {
				return mapError(err)
			}
			if attrs, err = rowsAffected(res); err != nil {
				return err
			}
			// No receipt: the relay applies the entries, which hide nothing Redis still serves.
			if _, err := logChanges(ctx, tx, attrsGone(gone, fed, now)); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM sso_session WHERE "+inList("ust_hash", len(hashes)), hashes...)
		if err != nil {
			return mapError(err)
		}
		sessions, err = rowsAffected(res)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if attrs > 0 {
		db.feedWake.changeLogged()
	}
	return sessions, attrs, nil
}

// endedSession is the key of a session to purge, and when it ended.
type endedSession struct {
	UserID string
	Hash   attrcache.SessionHash
	End    time.Time
}

// lockEndedSessions locks and returns at most batch sessions that have ended at now, the
// earliest ended first.
func lockEndedSessions(ctx context.Context, tx *sql.Tx, now time.Time, batch int) ([]endedSession, error) {
	return queryEach(ctx, tx, func(rows *sql.Rows) (s endedSession, err error) {
		err = rows.Scan(&s.UserID, &s.Hash, &s.End)
		return s, err
	}, `SELECT user_id, ust_hash, expiration_time FROM sso_session
		WHERE expiration_time <= ? ORDER BY expiration_time LIMIT ? FOR UPDATE`, now, batch)
}

// rowsAffected returns how many rows res changed.
func rowsAffected(res sql.Result) (int, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return int(n), nil
}

// RunPurger runs PurgeExpired (at attrcache.Now(), with batch) at once and then each time every
// has passed, until ctx ends, and reports each run to onPurge when it is not nil; a run cut short
// because ctx ended is not reported. It returns when ctx ends. every must be positive.
func (db *DB) RunPurger(ctx context.Context, every time.Duration, batch int, onPurge func(attrs, sessions int, err error)) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		attrs, sessions, err := db.PurgeExpired(ctx, attrcache.Now(), batch)
		if ctx.Err() != nil {
			return
		}
		if onPurge != nil {
			onPurge(attrs, sessions, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

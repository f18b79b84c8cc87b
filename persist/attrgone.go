package persist

import (
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/attrcache/attrcache"
)

// Attributes that go with their scope (a session ended or deleted, a user deleted) are read,
// locked, in the transaction that deletes them, and logged as ChangeGone entries that the change
// feed turns into one event each (ARCHITECTURE.md "Change feed"): an expire event for a row that
// had stopped being visible (it expired, or its session ended), a delete event for a live one.
// A row whose expiry is in the feed already (its mark in sso_feed_expired) is not logged, and
// the deletion takes its mark with it.

// goneAttr is an attribute row deleted with its user or session.
type goneAttr struct {
	key     attrKey
	version int64
	// endsAt is when the row stops being visible: its expiration time, or its session's end
	// when that comes first.
	endsAt time.Time
}

// feedMark is the key of a row of sso_feed_expired: an attribute's version whose expiry is in
// the change feed.
type feedMark struct {
	key     attrKey
	version int64
}

// goneAttrOf returns the goneAttr of a row of scope named name with version and expiresAt, whose
// session (none for a user scope) ends at sessionEnd.
func goneAttrOf(scope attrcache.AttrScope, name string, version int64, expiresAt time.Time, sessionEnd sql.NullTime) goneAttr {
	endsAt := expiresAt
	if sessionEnd.Valid && sessionEnd.Time.Before(endsAt) {
		endsAt = sessionEnd.Time
	}
	return goneAttr{key: attrKey{scope: scope, name: name}, version: version, endsAt: endsAt.UTC()}
}

// lockSessionEnds locks the rows of sso_session matching where (with args) and returns when each
// of them ends, keyed by hash. Errors are already mapped.
func lockSessionEnds(ctx context.Context, tx *sql.Tx, where string, args ...any) (map[attrcache.SessionHash]sql.NullTime, error) {
	type end struct {
		hash attrcache.SessionHash
		at   time.Time
	}
	rows, err := queryEach(ctx, tx, func(rows *sql.Rows) (e end, err error) {
		err = rows.Scan(&e.hash, &e.at)
		return e, err
	}, "SELECT ust_hash, expiration_time FROM sso_session WHERE "+where+" FOR UPDATE", args...)
	if err != nil {
		return nil, err
	}
	ends := make(map[attrcache.SessionHash]sql.NullTime, len(rows))
	for _, e := range rows {
		ends[e.hash] = sql.NullTime{Time: e.at, Valid: true}
	}
	return ends, nil
}

// takeExpiryMarks locks the rows of sso_feed_expired matching where (a condition on its user_id
// and ust_hash columns, with args), deletes those of the rows of gone, and returns them. The
// others stay: they are marks of rows deleted before, whose entries the sequencer has yet to
// match with them. Errors are already mapped.
func takeExpiryMarks(ctx context.Context, tx *sql.Tx, gone []goneAttr, where string, args []any) (map[feedMark]bool, error) {
	marks, err := queryEach(ctx, tx, func(rows *sql.Rows) (m feedMark, err error) {
		err = rows.Scan(&m.key.scope.UserID, &m.key.scope.Session, &m.key.name, &m.version)
		return m, err
	}, "SELECT user_id, ust_hash, name, version FROM sso_feed_expired WHERE "+where+" FOR UPDATE", args...)
	if err != nil || len(marks) == 0 {
		return nil, err
	}
	held := make(map[feedMark]bool, len(marks))
	for _, m := range marks {
		held[m] = true
	}
	var taken []feedMark
	for _, g := range gone {
		if m := (feedMark{key: g.key, version: g.version}); held[m] {
			taken = append(taken, m)
		}
	}
	fed := make(map[feedMark]bool, len(taken))
	for chunk := range slices.Chunk(taken, feedInsertChunk) {
		cond, condArgs := marksOf(chunk)
		if _, err := tx.ExecContext(ctx, "DELETE FROM sso_feed_expired WHERE "+cond, condArgs...); err != nil {
			return nil, mapError(err)
		}
		for _, m := range chunk {
			fed[m] = true
		}
	}
	return fed, nil
}

// attrsGone returns the ChangeGone entries of rows deleted at now with their user or session,
// leaving out those whose expiry is in fed: Version the row's, ExpiresAt when it stopped being
// visible if it had by now.
func attrsGone(rows []goneAttr, fed map[feedMark]bool, now time.Time) []attrcache.Change {
	changes := make([]attrcache.Change, 0, len(rows))
	for _, r := range rows {
		if fed[feedMark{key: r.key, version: r.version}] {
			continue
		}
		c := attrcache.Change{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeGone,
			UserID: r.key.scope.UserID, Session: r.key.scope.Session, Name: r.key.name, Version: r.version}
		if !r.endsAt.After(now) {
			c.ExpiresAt = r.endsAt
		}
		changes = append(changes, c)
	}
	return changes
}

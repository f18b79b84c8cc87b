package persist

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/attrcache/attrcache"
)

// The change log (migration 0007): a transaction that changes a row Redis may hold a copy of
// inserts, before it commits, rows of sso_change listing the rows it touched, each marked in
// sso_change_pending under one random token, noted on the caller's attrcache.ChangeReceipt and
// forgotten once the cache has applied it; the relay applies what nobody forgot. entries holds
// one line per row, fields separated by tabs, the name last (names hold no control characters):
//
//	<kind> <op> <user_id> <session hash> <version> <expiry µs since 1970, 0: none>[/<cid>] <name>
//
// with kind and op the bytes of attrcache.ChangeKind and attrcache.ChangeOp. The row's cid column
// is the cid of the call that logged it; an entry of another call's (a group-commit batch) carries
// its own after its expiry.

// changeEntriesExpr is the SQL expression of the entries of the sso_attr rows an aggregate
// query reads, as ChangeSet entries.
const changeEntriesExpr = `GROUP_CONCAT(CONCAT_WS('\t', 'a', 's', user_id, ust_hash, version,
	TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', expiration_time), name) SEPARATOR '\n')`

// logAttrSetsStmt returns the statement that logs rows, as written to sso_attr and matching the
// condition keys, as set, and its arguments before the condition's: their cid as the log row's
// when they share one, else each row's in a cid note after the entries, one string argument.
func logAttrSetsStmt(rows []attrRow, keys string) (string, []any) {
	if cid, uniform := commonCID(rows); uniform {
		return "INSERT INTO sso_change (change_time, cid, entries) SELECT UTC_TIMESTAMP(6), ?, " + changeEntriesExpr +
			" FROM sso_attr WHERE " + keys, []any{cid}
	}
	var notes []byte
	for _, row := range rows {
		notes = append(notes, '\n')
		notes = appendCIDNote(notes, row.scope, row.item.Name, row.cid)
	}
	return "INSERT INTO sso_change (change_time, entries) SELECT UTC_TIMESTAMP(6), CONCAT(" + changeEntriesExpr +
		", ?) FROM sso_attr WHERE " + keys, []any{notes}
}

// cidNote is the kind of an entries line that gives the cid of the entry of its key, not a
// change: c - <user_id> <session hash> 0 0/<cid> <name>.
const cidNote = 'c'

// appendCIDNote appends the cid note of the attribute name of scope.
func appendCIDNote(b []byte, scope attrcache.AttrScope, name, cid string) []byte {
	b = append(b, cidNote, '\t', '-', '\t')
	b = append(b, scope.UserID...)
	b = append(b, '\t')
	b = append(b, scope.Session...)
	b = append(b, "\t0\t0/"...)
	b = append(b, cleanCID(cid)...)
	b = append(b, '\t')
	return append(b, name...)
}

// commonCID returns the cid rows share, and whether they share one.
func commonCID(rows []attrRow) (cid string, uniform bool) {
	for i, row := range rows {
		if i > 0 && row.cid != cid {
			return "", false
		}
		cid = row.cid
	}
	return cleanCID(cid), true
}

// cleanCID returns cid without the control characters that would break a log entry, and at most
// 64 bytes long, as sso_change.cid takes.
func cleanCID(cid string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, cid)
	for len(clean) > 64 {
		_, size := utf8.DecodeLastRuneInString(clean)
		clean = clean[:len(clean)-size]
	}
	return clean
}

// markPendingStmt marks the change the statement before it logged as pending under the token
// given as its argument.
const markPendingStmt = "INSERT INTO sso_change_pending (change_id, token, created) VALUES (LAST_INSERT_ID(), ?, UTC_TIMESTAMP(6))"

// forgetInterval is how long acknowledged tokens wait to be deleted together.
const forgetInterval = 20 * time.Millisecond

// forgetChunk bounds the tokens of one DELETE.
const forgetChunk = 1000

var _ attrcache.ChangeLog = (*DB)(nil)

// newChangeToken returns a token for a pending mark: random, positive.
func newChangeToken() int64 { return rand.Int64N(1<<63-1) + 1 }

// changeRowBytes bounds the entries of one row of the log that logChanges writes.
const changeRowBytes = 1 << 20

// changeEntryBytes bounds what a change adds to an entries column besides its strings.
const changeEntryBytes = 48

// logChanges logs changes in tx, in rows of at most changeRowBytes of entries, marked pending
// under one token, which it returns. No changes: no row and token 0.
func logChanges(ctx context.Context, tx *sql.Tx, changes []attrcache.Change) (token int64, err error) {
	return logChangesAs(ctx, tx, cleanCID(attrcache.CIDOf(ctx)), changes)
}

// logChangesAs is logChanges with cid the rows' cid: the cid of the entries with none of their own.
func logChangesAs(ctx context.Context, tx *sql.Tx, cid string, changes []attrcache.Change) (token int64, err error) {
	if len(changes) == 0 {
		return 0, nil
	}
	token = newChangeToken()
	for _, part := range splitBySize(changes, changeRowBytes, changeSize) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO sso_change (change_time, cid, entries) VALUES (UTC_TIMESTAMP(6), ?, ?)",
			cid, encodeChanges(part, cid)); err != nil {
			return 0, mapError(err)
		}
		if _, err := tx.ExecContext(ctx, markPendingStmt, token); err != nil {
			return 0, mapError(err)
		}
	}
	return token, nil
}

// changeSize bounds what c adds to an entries column.
func changeSize(c attrcache.Change) int {
	return changeEntryBytes + len(c.UserID) + len(c.Session) + len(c.Name) + len(c.CID)
}

// attrSets returns the ChangeSet entries of attrs as stored.
func attrSets(attrs []*attrcache.Attr) []attrcache.Change {
	changes := make([]attrcache.Change, 0, len(attrs))
	for _, a := range attrs {
		if a == nil {
			continue
		}
		changes = append(changes, attrcache.Change{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeSet,
			UserID: a.Scope.UserID, Session: a.Scope.Session, Name: a.Name, Version: a.Version, ExpiresAt: a.ExpirationTime})
	}
	return changes
}

// noteLogged notes token (0: none) on ctx's receipt: once the cache has applied the change,
// its pending mark is forgotten.
func (db *DB) noteLogged(ctx context.Context, token int64) {
	if token != 0 {
		db.feedWake.changeLogged()
		attrcache.NoteChangeLogged(ctx, func() { db.forgetter.add(token) })
	}
}

// noteLoggedShared notes token on every one of ctxs: the mark is forgotten once the cache has
// applied the change of each.
func (db *DB) noteLoggedShared(ctxs []context.Context, token int64) {
	db.feedWake.changeLogged()
	left := new(atomic.Int64)
	left.Store(int64(len(ctxs)))
	for _, ctx := range ctxs {
		attrcache.NoteChangeLogged(ctx, func() {
			if left.Add(-1) == 0 {
				db.forgetter.add(token)
			}
		})
	}
}

// encodeChanges returns the entries column of changes logged in a row of cid: an entry with a
// cid of its own other than that one carries it after its expiry and a slash (decodeChanges also
// reads the cid notes of logAttrSetsStmt).
func encodeChanges(changes []attrcache.Change, cid string) []byte {
	var b bytes.Buffer
	for i, c := range changes {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteByte(byte(c.Kind))
		b.WriteByte('\t')
		b.WriteByte(byte(c.Op))
		b.WriteByte('\t')
		b.WriteString(c.UserID)
		b.WriteByte('\t')
		b.WriteString(string(c.Session))
		b.WriteByte('\t')
		b.WriteString(strconv.FormatInt(c.Version, 10))
		b.WriteByte('\t')
		var expiry int64
		if !c.ExpiresAt.IsZero() {
			expiry = c.ExpiresAt.UnixMicro()
		}
		b.WriteString(strconv.FormatInt(expiry, 10))
		if own := cleanCID(c.CID); own != "" && own != cid {
			b.WriteByte('/')
			b.WriteString(own)
		}
		b.WriteByte('\t')
		b.WriteString(c.Name)
	}
	return b.Bytes()
}

// decodeChanges reads an entries column.
func decodeChanges(entries []byte) ([]attrcache.Change, error) {
	lines := strings.Split(string(entries), "\n")
	changes := make([]attrcache.Change, 0, len(lines))
	var notes map[attrcache.AttrKey]string // cid notes, by key
	for _, line := range lines {
		fields := strings.SplitN(line, "\t", 7)
		if len(fields) != 7 || len(fields[0]) != 1 || len(fields[1]) != 1 {
			return nil, fmt.Errorf("malformed change log entry %q", line)
		}
		version, err := strconv.ParseInt(fields[4], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("change log entry: version: %w", err)
		}
		expiryField, cid, _ := strings.Cut(fields[5], "/")
		expiry, err := strconv.ParseInt(expiryField, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("change log entry: expiry: %w", err)
		}
		c := attrcache.Change{Kind: attrcache.ChangeKind(fields[0][0]), Op: attrcache.ChangeOp(fields[1][0]),
			UserID: fields[2], Session: attrcache.SessionHash(fields[3]), Version: version, Name: fields[6], CID: cid}
		if fields[0][0] == cidNote {
			if notes == nil {
				notes = make(map[attrcache.AttrKey]string)
			}
			notes[attrcache.AttrKey{Scope: attrcache.AttrScope{UserID: c.UserID, Session: c.Session}, Name: c.Name}] = cid
			continue
		}
		if expiry != 0 {
			c.ExpiresAt = time.UnixMicro(expiry).UTC()
		}
		changes = append(changes, c)
	}
	for i, c := range changes {
		if cid, ok := notes[attrcache.AttrKey{Scope: attrcache.AttrScope{UserID: c.UserID, Session: c.Session}, Name: c.Name}]; ok && c.CID == "" {
			changes[i].CID = cid
		}
	}
	return changes, nil
}

// PendingChanges returns at most limit logged batches still marked pending whose mark is at
// least grace old by the database's clock, oldest first.
func (db *DB) PendingChanges(ctx context.Context, grace time.Duration, limit int) ([]attrcache.ChangeBatch, error) {
	batches, err := db.queryChanges(ctx, `SELECT c.change_id, c.change_time, c.entries
		FROM sso_change_pending p JOIN sso_change c ON c.change_id = p.change_id
		WHERE p.created <= UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND ORDER BY p.created LIMIT ?`,
		grace.Microseconds(), limit)
	if err != nil {
		return nil, fmt.Errorf("persist: pending changes: %w", err)
	}
	return batches, nil
}

// ForgetPending deletes the pending marks of the batches with these IDs.
func (db *DB) ForgetPending(ctx context.Context, ids []int64) error {
	if err := db.deletePending(ctx, "change_id", ids); err != nil {
		return fmt.Errorf("persist: forget pending changes: %w", err)
	}
	return nil
}

// deletePending deletes the pending marks whose column (change_id or token) is one of values.
// Errors are mapped.
func (db *DB) deletePending(ctx context.Context, column string, values []int64) error {
	for start := 0; start < len(values); start += forgetChunk {
		chunk := values[start:min(start+forgetChunk, len(values))]
		args := make([]any, len(chunk))
		for i, v := range chunk {
			args[i] = v
		}
		if _, err := db.db.ExecContext(ctx, "DELETE FROM sso_change_pending WHERE "+inList(column, len(args)), args...); err != nil {
			return mapError(err)
		}
	}
	return nil
}

// ChangesSince returns at most limit batches logged at since or later (by the database's clock)
// with an ID above afterID, in ID order.
func (db *DB) ChangesSince(ctx context.Context, since time.Time, afterID int64, limit int) ([]attrcache.ChangeBatch, error) {
	batches, err := db.queryChanges(ctx, `SELECT change_id, change_time, entries FROM sso_change
		WHERE change_time >= ? AND change_id > ? ORDER BY change_id LIMIT ?`, since.UTC(), afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("persist: changes since %s: %w", since.UTC().Format(time.RFC3339Nano), err)
	}
	return batches, nil
}

// PurgeChanges deletes at most limit batches logged before before, with their pending marks, and
// returns how many batches it deleted.
func (db *DB) PurgeChanges(ctx context.Context, before time.Time, limit int) (int, error) {
	if _, err := db.db.ExecContext(ctx, "DELETE FROM sso_change_pending WHERE created < ? ORDER BY created LIMIT ?",
		before.UTC(), limit); err != nil {
		return 0, fmt.Errorf("persist: purge pending changes: %w", mapError(err))
	}
	res, err := db.db.ExecContext(ctx, "DELETE FROM sso_change WHERE change_time < ? ORDER BY change_time LIMIT ?",
		before.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("persist: purge changes: %w", mapError(err))
	}
	n, err := rowsAffected(res)
	if err != nil {
		return 0, fmt.Errorf("persist: purge changes: %w", err)
	}
	return n, nil
}

// queryChanges runs a query of (change_id, change_time, entries). Errors are mapped.
func (db *DB) queryChanges(ctx context.Context, query string, args ...any) ([]attrcache.ChangeBatch, error) {
	rows, err := db.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var batches []attrcache.ChangeBatch
	for rows.Next() {
		var b attrcache.ChangeBatch
		var entries []byte
		if err := rows.Scan(&b.ID, &b.Time, &entries); err != nil {
			return nil, mapError(err)
		}
		if b.Changes, err = decodeChanges(entries); err != nil {
			return nil, fmt.Errorf("change %d: %w", b.ID, err)
		}
		batches = append(batches, b)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	return batches, nil
}

// forgetter deletes the pending marks of applied changes in the background, those of each
// forgetInterval together. Losing some (a crash) only leaves them to the relay.
type forgetter struct {
	db *DB

	mu     sync.Mutex
	tokens []int64
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func startForgetter(db *DB) *forgetter {
	f := &forgetter{db: db, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

// add queues token for deletion.
func (f *forgetter) add(token int64) {
	f.mu.Lock()
	f.tokens = append(f.tokens, token)
	first := len(f.tokens) == 1
	f.mu.Unlock()
	if first {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// run deletes the queued tokens, forgetInterval after the first of each lot, until close.
func (f *forgetter) run() {
	defer close(f.done)
	for {
		select {
		case <-f.stop:
			f.flush()
			return
		case <-f.wake:
		}
		timer := time.NewTimer(forgetInterval)
		select {
		case <-f.stop:
			timer.Stop()
			f.flush()
			return
		case <-timer.C:
		}
		f.flush()
	}
}

// flush deletes the queued tokens; on failure they stay for the relay.
func (f *forgetter) flush() {
	f.mu.Lock()
	tokens := f.tokens
	f.tokens = nil
	f.mu.Unlock()
	if len(tokens) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.db.deletePending(ctx, "token", tokens)
}

// close deletes what is queued and stops.
func (f *forgetter) close() {
	f.once.Do(func() { close(f.stop) })
	<-f.done
}

// attrDeletes returns the ChangeDelete entries of names of scope, deleted with tombstone.
func attrDeletes(scope attrcache.AttrScope, names []string, tombstone int64) []attrcache.Change {
	changes := make([]attrcache.Change, len(names))
	for i, name := range names {
		changes[i] = attrcache.Change{Kind: attrcache.ChangeAttr, Op: attrcache.ChangeDelete,
			UserID: scope.UserID, Session: scope.Session, Name: name, Version: tombstone}
	}
	return changes
}

// userGone returns the entries of the deletion of userID, with attrs the entries of their
// attributes that went with them.
func userGone(userID string, attrs []attrcache.Change) []attrcache.Change {
	return append([]attrcache.Change{{Kind: attrcache.ChangePrincipal, Op: attrcache.ChangeGone, UserID: userID}}, attrs...)
}

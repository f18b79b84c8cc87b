package persist

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/attrcache/attrcache"
)

// The change feed (migrations 0010 and 0011, ARCHITECTURE.md "Change feed"). The sequencer (SequenceFeed,
// run by every instance) takes the change log's rows not yet fed and the attributes that expired
// without an expire event, in one transaction that holds the one row of sso_feed_state, and
// numbers their events from that row's last_seq on. Whoever holds the row sees every change
// committed before it took it, so an event numbered later never becomes visible before one
// numbered earlier, and readers page by seq alone.

// feedPage bounds the log rows, and the expired attributes, of one sequencing transaction.
const feedPage = 500

// feedInsertChunk bounds the rows of one statement on sso_feed_expired.
const feedInsertChunk = 200

var _ attrcache.ChangeFeed = (*DB)(nil)

// feedOps maps a change log entry's op to its feed op; ChangeGone's is goneEvent's.
var feedOps = map[attrcache.ChangeOp]attrcache.FeedOp{
	attrcache.ChangeSet:    attrcache.FeedSet,
	attrcache.ChangeDelete: attrcache.FeedDelete,
	attrcache.ChangeGone:   attrcache.FeedDelete,
}

// goneEvent sets the op, version and time of e, the event of c, an attribute gone with its user
// or session: an expire event of its version at its end when it had stopped being visible, else
// a delete event one version above it. An entry logged without a version is a delete of version 0.
func goneEvent(e *attrcache.FeedEvent, c attrcache.Change) {
	switch {
	case c.Version == 0:
		e.Op, e.Version = attrcache.FeedDelete, 0
	case !c.ExpiresAt.IsZero():
		e.Op, e.Version, e.Time = attrcache.FeedExpire, c.Version, c.ExpiresAt.UTC()
	default:
		e.Op, e.Version = attrcache.FeedDelete, c.Version+1
	}
}

// SequenceFeed adds to the feed the events of the change log's rows not yet fed and, with
// expiries, once those are all in, an expire event for each attribute expired at now whose
// expiry is not in the feed yet, in transactions of at most feedPage rows, until nothing is
// left; it returns how many events it added. Several callers at once (instances) take turns:
// each event is added once.
func (db *DB) SequenceFeed(ctx context.Context, now time.Time, expiries bool) (int, error) {
	total := 0
	for {
		if idle, err := db.feedIdle(ctx, now, expiries); err != nil || idle {
			return total, err
		}
		var added int
		var more bool
		err := db.inWriteTx(ctx, func(tx *sql.Tx) error {
			var err error
			added, more, err = sequenceFeedPage(ctx, tx, now, expiries)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("persist: sequencing the change feed: %w", err)
		}
		total += added
		if added > 0 {
			db.feedWake.added()
		}
		if !more {
			return total, nil
		}
	}
}

// feedIdle says, without a lock, whether the sequencer has nothing to do: no row of the log
// unfed, and with expiries no attribute expired at now, or of a session ended lately, without
// its expire event.
func (db *DB) feedIdle(ctx context.Context, now time.Time, expiries bool) (bool, error) {
	var work int
	err := db.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sso_change WHERE fed = FALSE)
		OR (? AND EXISTS (`+expiredUnfedQuery+`)) OR (? AND EXISTS (`+endedUnfedQuery+`))`,
		expiries, now, expiries, now.Add(-sessionEndWindow), now).Scan(&work)
	if err != nil {
		return false, fmt.Errorf("persist: sequencing the change feed: %w", mapError(err))
	}
	return work == 0, nil
}

// expiredUnfedQuery selects the attributes expired at its argument whose expire event is not in
// the feed, the earliest expiry first.
const expiredUnfedQuery = `SELECT a.user_id, a.ust_hash, a.name, a.version, a.expiration_time FROM sso_attr a
	WHERE a.expiration_time <= ? AND NOT EXISTS (SELECT 1 FROM sso_feed_expired e
		WHERE e.user_id = a.user_id AND e.ust_hash = a.ust_hash AND e.name = a.name AND e.version = a.version)
	ORDER BY a.expiration_time`

// sessionEndWindow is how far back the sequencer looks for sessions that ended: the attributes
// of one that ended earlier without their expire events get them when the session is deleted
// or purged (attrsGone).
const sessionEndWindow = 10 * feedExpiryEvery

// endedUnfedQuery selects the attributes, still live by their own expiry, of the sessions that
// ended after its first argument and at its second, whose expire event is not in the feed, with
// their session's end, the earliest end first.
const endedUnfedQuery = `SELECT a.user_id, a.ust_hash, a.name, a.version, s.expiration_time FROM sso_session s
	JOIN sso_attr a ON a.user_id = s.user_id AND a.ust_hash = s.ust_hash
	WHERE s.expiration_time > ? AND s.expiration_time <= ? AND a.expiration_time > s.expiration_time
		AND NOT EXISTS (SELECT 1 FROM sso_feed_expired e
			WHERE e.user_id = a.user_id AND e.ust_hash = a.ust_hash AND e.name = a.name AND e.version = a.version)
	ORDER BY s.expiration_time`

// sequenceFeedPage adds one page of events in tx and says whether more may be waiting.
func sequenceFeedPage(ctx context.Context, tx *sql.Tx, now time.Time, expiries bool) (added int, more bool, err error) {
	var last int64
	// The lock comes before the first plain read, which fixes what tx sees: every change
	// committed before the lock was granted.
	if err := tx.QueryRowContext(ctx, "SELECT last_seq FROM sso_feed_state WHERE id = 1 FOR UPDATE").Scan(&last); err != nil {
		return 0, false, mapError(err)
	}
	events, fed, err := unfedChanges(ctx, tx)
	if err != nil {
		return 0, false, err
	}
	more = len(fed) == feedPage
	var expired []attrcache.FeedEvent
	if !more && expiries {
		// Every set is in (or in this page) before any expire event of its version.
		if expired, more, err = expiredUnfed(ctx, tx, now); err != nil {
			return 0, false, err
		}
		events = append(events, expired...)
	}
	for i := range events {
		events[i].Seq = last + int64(i) + 1
	}
	if err := insertFeedEvents(ctx, tx, events); err != nil {
		return 0, false, err
	}
	if err := markExpiryFed(ctx, tx, expired); err != nil {
		return 0, false, err
	}
	if len(fed) > 0 {
		args := make([]any, len(fed))
		for i, id := range fed {
			args[i] = id
		}
		if _, err := tx.ExecContext(ctx, "UPDATE sso_change SET fed = TRUE WHERE "+inList("change_id", len(args)), args...); err != nil {
			return 0, false, mapError(err)
		}
	}
	if len(events) > 0 {
		if _, err := tx.ExecContext(ctx, "UPDATE sso_feed_state SET last_seq = ? WHERE id = 1", last+int64(len(events))); err != nil {
			return 0, false, mapError(err)
		}
	}
	return len(events), more, nil
}

// unfedChanges reads at most feedPage rows of the log not yet fed and returns their attribute
// events, each attribute's in version order, and the rows' IDs. An attribute gone with its user
// or session whose expiry is in the feed already has no event; its mark goes.
func unfedChanges(ctx context.Context, tx *sql.Tx) ([]attrcache.FeedEvent, []int64, error) {
	rows, err := tx.QueryContext(ctx, "SELECT change_id, change_time, cid, entries FROM sso_change WHERE fed = FALSE ORDER BY change_id LIMIT ?", feedPage)
	if err != nil {
		return nil, nil, mapError(err)
	}
	defer rows.Close()
	var events []attrcache.FeedEvent
	var ids []int64
	gone := make(map[int]feedMark) // events of attributes gone with their scope, by place
	for rows.Next() {
		var id int64
		var at time.Time
		var cid string
		var entries []byte
		if err := rows.Scan(&id, &at, &cid, &entries); err != nil {
			return nil, nil, mapError(err)
		}
		ids = append(ids, id)
		changes, err := decodeChanges(entries)
		if err != nil {
			return nil, nil, fmt.Errorf("change %d: %w", id, err)
		}
		for _, c := range changes {
			op, ok := feedOps[c.Op]
			if c.Kind != attrcache.ChangeAttr || !ok {
				continue
			}
			e := attrcache.FeedEvent{Op: op, UserID: c.UserID, Session: c.Session, Name: c.Name,
				Version: c.Version, Time: at.UTC(), CID: cmp.Or(c.CID, cid)}
			if c.Op == attrcache.ChangeGone {
				goneEvent(&e, c)
				if c.Version != 0 {
					gone[len(events)] = feedMark{key: attrKey{scope: attrcache.AttrScope{UserID: c.UserID, Session: c.Session}, name: c.Name}, version: c.Version}
				}
			}
			events = append(events, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, mapError(err)
	}
	rows.Close()
	if events, err = dropFedExpiries(ctx, tx, events, gone); err != nil {
		return nil, nil, err
	}
	orderVersions(events)
	return events, ids, nil
}

// dropFedExpiries returns events without those of gone (places in events, with the mark each
// would match) whose mark is in sso_feed_expired, and deletes those marks: the row was deleted
// after the sequencer had logged its expiry, which is its one event.
func dropFedExpiries(ctx context.Context, tx *sql.Tx, events []attrcache.FeedEvent, gone map[int]feedMark) ([]attrcache.FeedEvent, error) {
	if len(gone) == 0 {
		return events, nil
	}
	fed := make(map[feedMark]bool)
	marks := slices.Collect(maps.Values(gone))
	for chunk := range slices.Chunk(marks, feedInsertChunk) {
		where, args := marksOf(chunk)
		found, err := queryEach(ctx, tx, func(rows *sql.Rows) (m feedMark, err error) {
			err = rows.Scan(&m.key.scope.UserID, &m.key.scope.Session, &m.key.name, &m.version)
			return m, err
		}, "SELECT user_id, ust_hash, name, version FROM sso_feed_expired WHERE "+where, args...)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			continue
		}
		where, args = marksOf(found)
		if _, err := tx.ExecContext(ctx, "DELETE FROM sso_feed_expired WHERE "+where, args...); err != nil {
			return nil, mapError(err)
		}
		for _, m := range found {
			fed[m] = true
		}
	}
	if len(fed) == 0 {
		return events, nil
	}
	kept := events[:0]
	for i, e := range events {
		if m, ok := gone[i]; !ok || !fed[m] {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// marksOf returns the condition that matches the rows of sso_feed_expired of marks, and its
// arguments.
func marksOf(marks []feedMark) (string, []any) {
	conds := make([]string, len(marks))
	args := make([]any, 0, 4*len(marks))
	for i, m := range marks {
		conds[i] = "(user_id = ? AND ust_hash = ? AND name = ? AND version = ?)"
		args = append(args, m.key.scope.UserID, string(m.key.scope.Session), m.key.name, m.version)
	}
	return strings.Join(conds, " OR "), args
}

// opRank orders the events of one version of an attribute: its set, then its expiry.
var opRank = map[attrcache.FeedOp]int{attrcache.FeedSet: 0, attrcache.FeedExpire: 1, attrcache.FeedDelete: 2}

// orderVersions puts the events of each attribute in version order (a set before the expiry of
// its version, a deletion logged without a version last) in the places its events hold. Log rows
// are read in ID order, and on a Galera cluster each node takes its own IDs, so a later write of
// an attribute on one node may have the lower ID.
func orderVersions(events []attrcache.FeedEvent) {
	type key struct {
		user, session, name string
	}
	first := make(map[key]int, len(events))
	places := make(map[key][]int) // of the attributes with several events only
	for i, e := range events {
		k := key{e.UserID, string(e.Session), e.Name}
		if at, ok := places[k]; ok {
			places[k] = append(at, i)
		} else if f, ok := first[k]; ok {
			places[k] = []int{f, i}
		} else {
			first[k] = i
		}
	}
	rank := func(e attrcache.FeedEvent) int64 {
		if e.Version == 0 {
			return 1<<63 - 1
		}
		return e.Version
	}
	for _, at := range places {
		group := make([]attrcache.FeedEvent, len(at))
		for i, p := range at {
			group[i] = events[p]
		}
		slices.SortStableFunc(group, func(a, b attrcache.FeedEvent) int {
			return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(opRank[a.Op], opRank[b.Op]))
		})
		for i, p := range at {
			events[p] = group[i]
		}
	}
}

// expiredUnfed returns an expire event for each of at most feedPage attributes expired at now,
// and each of at most feedPage attributes of the sessions that ended within sessionEndWindow
// before now, whose expiry is not in the feed, and says whether either was cut at feedPage.
// An attribute in both has the earlier end.
func expiredUnfed(ctx context.Context, tx *sql.Tx, now time.Time) (events []attrcache.FeedEvent, more bool, err error) {
	scan := func(rows *sql.Rows) (e attrcache.FeedEvent, err error) {
		e.Op = attrcache.FeedExpire
		err = rows.Scan(&e.UserID, &e.Session, &e.Name, &e.Version, &e.Time)
		e.Time = e.Time.UTC()
		return e, err
	}
	expired, err := queryEach(ctx, tx, scan, expiredUnfedQuery+" LIMIT ?", now, feedPage)
	if err != nil {
		return nil, false, err
	}
	ended, err := queryEach(ctx, tx, scan, endedUnfedQuery+" LIMIT ?", now.Add(-sessionEndWindow), now, feedPage)
	if err != nil {
		return nil, false, err
	}
	at := make(map[feedMark]int, len(expired)+len(ended))
	for _, e := range slices.Concat(ended, expired) {
		m := feedMark{key: attrKey{scope: attrcache.AttrScope{UserID: e.UserID, Session: e.Session}, name: e.Name}, version: e.Version}
		if i, seen := at[m]; seen {
			if e.Time.Before(events[i].Time) {
				events[i].Time = e.Time
			}
			continue
		}
		at[m] = len(events)
		events = append(events, e)
	}
	return events, len(expired) == feedPage || len(ended) == feedPage, nil
}

// insertFeedEvents stores events, numbered consecutively, as pages of sso_feed_page of at most
// feedPageEvents events and about feedPageBytes each.
func insertFeedEvents(ctx context.Context, tx *sql.Tx, events []attrcache.FeedEvent) error {
	size := 0
	for _, e := range events {
		size += feedLineBytes + len(e.UserID) + len(e.Session) + len(e.CID) + len(e.Name)
	}
	page := make([]byte, 0, min(size, feedPageBytes+feedLineBytes+4*attrcache.MaxAttrNameBytes))
	first := 0
	flush := func(end int) error {
		if end == first {
			return nil
		}
		last := events[end-1].Seq
		_, err := tx.ExecContext(ctx, "INSERT INTO sso_feed_page (last_seq, first_seq, fed_time, events) VALUES (?, ?, UTC_TIMESTAMP(6), ?)",
			last, events[first].Seq, page)
		if err != nil {
			return mapError(err)
		}
		if err := insertFeedUsers(ctx, tx, events[first:end], last); err != nil {
			return err
		}
		page, first = page[:0], end
		return nil
	}
	for i, e := range events {
		if i-first == feedPageEvents || len(page) >= feedPageBytes {
			if err := flush(i); err != nil {
				return err
			}
		}
		page = appendFeedLine(page, e)
	}
	return flush(len(events))
}

// feedLineBytes bounds what an event's line holds besides its strings.
const feedLineBytes = 48

// insertFeedUsers records in sso_feed_user each user with events among events, the page that
// ends at last.
func insertFeedUsers(ctx context.Context, tx *sql.Tx, events []attrcache.FeedEvent, last int64) error {
	seen := make(map[string]bool)
	var users []string
	for _, e := range events {
		if !seen[e.UserID] {
			seen[e.UserID] = true
			users = append(users, e.UserID)
		}
	}
	for chunk := range slices.Chunk(users, feedInsertChunk) {
		args := make([]any, 0, 2*len(chunk))
		for _, user := range chunk {
			args = append(args, user, last)
		}
		_, err := tx.ExecContext(ctx, "INSERT IGNORE INTO sso_feed_user (user_id, last_seq) VALUES "+
			strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", "), args...)
		if err != nil {
			return mapError(err)
		}
	}
	return nil
}

// Bounds of one page of sso_feed_page.
const (
	feedPageEvents = 5000
	feedPageBytes  = 512 << 10
)

// appendFeedLine appends e to a page: its fields but the seq, tab-separated, the name last (names
// hold no control characters; a cid's are dropped), and a newline before it unless it is first.
func appendFeedLine(page []byte, e attrcache.FeedEvent) []byte {
	if len(page) > 0 {
		page = append(page, '\n')
	}
	page = append(page, feedOpBytes[e.Op])
	page = append(page, '\t')
	page = append(page, e.UserID...)
	page = append(page, '\t')
	page = append(page, e.Session...)
	page = append(page, '\t')
	page = strconv.AppendInt(page, e.Version, 10)
	page = append(page, '\t')
	page = strconv.AppendInt(page, e.Time.UnixMicro(), 10)
	page = append(page, '\t')
	for _, r := range e.CID {
		if r >= 0x20 && r != 0x7f {
			page = utf8.AppendRune(page, r)
		}
	}
	page = append(page, '\t')
	return append(page, e.Name...)
}

// feedOpBytes is the byte of each FeedOp in a page.
var feedOpBytes = map[attrcache.FeedOp]byte{attrcache.FeedSet: 's', attrcache.FeedDelete: 'd', attrcache.FeedExpire: 'e'}

// decodeFeedPage calls fn with each event of a page whose first event is first, in seq order,
// and of userID when it is not "", until fn returns false. A line it cannot read is an error.
func decodeFeedPage(page []byte, first int64, userID string, fn func(attrcache.FeedEvent) bool) error {
	seq := first
	for line := range bytes.SplitSeq(page, []byte{'\n'}) {
		fields := bytes.SplitN(line, []byte{'\t'}, 7)
		if len(fields) != 7 || len(fields[0]) != 1 {
			return fmt.Errorf("feed event %d: malformed", seq)
		}
		if userID == "" || string(fields[1]) == userID {
			version, err1 := strconv.ParseInt(string(fields[3]), 10, 64)
			micros, err2 := strconv.ParseInt(string(fields[4]), 10, 64)
			op, ok := feedOpByByte[string(fields[0])]
			if err1 != nil || err2 != nil || !ok {
				return fmt.Errorf("feed event %d: malformed", seq)
			}
			e := attrcache.FeedEvent{Seq: seq, Op: op, UserID: string(fields[1]), Session: attrcache.SessionHash(fields[2]),
				Version: version, Time: time.UnixMicro(micros).UTC(), CID: string(fields[5]), Name: string(fields[6])}
			if !fn(e) {
				return nil
			}
		}
		seq++
	}
	return nil
}

// markExpiryFed records that the expiries of events are in the feed.
func markExpiryFed(ctx context.Context, tx *sql.Tx, events []attrcache.FeedEvent) error {
	for start := 0; start < len(events); start += feedInsertChunk {
		chunk := events[start:min(start+feedInsertChunk, len(events))]
		args := make([]any, 0, 4*len(chunk))
		for _, e := range chunk {
			args = append(args, e.UserID, string(e.Session), e.Name, e.Version)
		}
		_, err := tx.ExecContext(ctx, "INSERT IGNORE INTO sso_feed_expired (user_id, ust_hash, name, version) VALUES "+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(chunk)), ", "), args...)
		if err != nil {
			return mapError(err)
		}
	}
	return nil
}

// feedOpByByte maps the op byte of a page's event to its FeedOp.
var feedOpByByte = map[string]attrcache.FeedOp{"s": attrcache.FeedSet, "d": attrcache.FeedDelete, "e": attrcache.FeedExpire}

// FeedBounds returns the lowest seq kept in the feed (0: none) and the highest handed out.
func (db *DB) FeedBounds(ctx context.Context) (oldest, last int64, err error) {
	// Pages do not overlap: the first of the lowest page is the lowest seq, found on the key.
	err = db.db.QueryRowContext(ctx, `SELECT COALESCE((SELECT first_seq FROM sso_feed_page ORDER BY last_seq LIMIT 1), 0),
		(SELECT last_seq FROM sso_feed_state WHERE id = 1)`).Scan(&oldest, &last)
	if err != nil {
		return 0, 0, fmt.Errorf("persist: change feed bounds: %w", mapError(err))
	}
	return oldest, last, nil
}

// feedScanPages bounds the pages one FeedEvents call reads.
const feedScanPages = 64

// FeedEvents returns at most limit events with after < seq <= upTo, of userID ("": everyone's),
// in seq order, and readTo: every event up to it has been looked at. A reader of one user's events
// reads the pages that hold some (sso_feed_user) and keeps theirs; a call reads at most
// feedScanPages pages, so readTo may stop short of upTo with fewer than limit events.
func (db *DB) FeedEvents(ctx context.Context, userID string, after, upTo int64, limit int) (events []attrcache.FeedEvent, readTo int64, err error) {
	query := `SELECT first_seq, last_seq, events FROM sso_feed_page
		WHERE last_seq > ? AND first_seq <= ? ORDER BY last_seq LIMIT ?`
	// Every page read holds an event to keep, but the first may hold only events up to after.
	args := []any{after, upTo, min(feedScanPages, limit+1)}
	if userID != "" {
		query = `SELECT p.first_seq, p.last_seq, p.events FROM sso_feed_user u JOIN sso_feed_page p ON p.last_seq = u.last_seq
			WHERE u.user_id = ? AND u.last_seq > ? AND p.first_seq <= ? ORDER BY u.last_seq LIMIT ?`
		args = append([]any{userID}, args...)
	}
	rows, err := db.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("persist: change feed: %w", mapError(err))
	}
	defer rows.Close()
	readTo, pages, full := upTo, 0, false
	for rows.Next() && !full {
		var first, last int64
		var page []byte
		if err := rows.Scan(&first, &last, &page); err != nil {
			return nil, 0, fmt.Errorf("persist: change feed: %w", mapError(err))
		}
		pages++
		err := decodeFeedPage(page, first, userID, func(e attrcache.FeedEvent) bool {
			if e.Seq <= after || e.Seq > upTo {
				return e.Seq <= after
			}
			events = append(events, e)
			full = len(events) == limit
			return !full
		})
		if err != nil {
			return nil, 0, fmt.Errorf("persist: change feed: %w", err)
		}
		switch {
		case full:
			readTo = events[len(events)-1].Seq
		case pages == feedScanPages || pages == limit+1:
			readTo = min(last, upTo)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("persist: change feed: %w", mapError(err))
	}
	return events, readTo, nil
}

// PurgeFeed deletes the feed's pages that entered it before before, and every page numbered
// below them, so that what is kept is every event from the lowest kept on; it returns how many
// events it deleted.
func (db *DB) PurgeFeed(ctx context.Context, before time.Time) (int, error) {
	var bound sql.NullInt64
	if err := db.db.QueryRowContext(ctx, "SELECT MAX(last_seq) FROM sso_feed_page WHERE fed_time < ?", before.UTC()).Scan(&bound); err != nil {
		return 0, fmt.Errorf("persist: purge change feed: %w", mapError(err))
	}
	if !bound.Valid {
		return 0, nil
	}
	total := 0
	for {
		var lowest, events sql.NullInt64
		err := db.db.QueryRowContext(ctx, `SELECT MAX(last_seq), SUM(last_seq - first_seq + 1) FROM (SELECT last_seq, first_seq
			FROM sso_feed_page WHERE last_seq <= ? ORDER BY last_seq LIMIT ?) chunk`, bound.Int64, purgeFeedChunk).Scan(&lowest, &events)
		if err != nil {
			return total, fmt.Errorf("persist: purge change feed: %w", mapError(err))
		}
		if !lowest.Valid {
			return total, nil
		}
		if _, err := db.db.ExecContext(ctx, "DELETE FROM sso_feed_page WHERE last_seq <= ?", lowest.Int64); err != nil {
			return total, fmt.Errorf("persist: purge change feed: %w", mapError(err))
		}
		if _, err := db.db.ExecContext(ctx, "DELETE FROM sso_feed_user WHERE last_seq <= ?", lowest.Int64); err != nil {
			return total, fmt.Errorf("persist: purge change feed: %w", mapError(err))
		}
		total += int(events.Int64)
	}
}

// purgeFeedChunk bounds the pages one DELETE of PurgeFeed removes.
const purgeFeedChunk = 1000

// feedExpiryEvery is how often the sequencer looks for expired attributes.
const feedExpiryEvery = time.Second

package persist

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// feedKey names an attribute's event as a test expects it, without its seq, time and cid.
type feedKey struct {
	Op      attrcache.FeedOp
	UserID  string
	Session attrcache.SessionHash
	Name    string
	Version int64
}

func keyOf(e attrcache.FeedEvent) feedKey {
	return feedKey{e.Op, e.UserID, e.Session, e.Name, e.Version}
}

// readFeed returns every event of db's feed of userID ("": everyone's), in pages of 7, and checks
// that their seqs grow.
func readFeed(t *testing.T, db *DB, userID string) []attrcache.FeedEvent {
	t.Helper()
	_, last, err := db.FeedBounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var all []attrcache.FeedEvent
	var after int64
	for after < last {
		page, readTo, err := db.FeedEvents(t.Context(), userID, after, last, 7)
		if err != nil {
			t.Fatalf("FeedEvents: %v", err)
		}
		for _, e := range page {
			if e.Seq <= after || e.Seq > readTo {
				t.Fatalf("seq %d after %d, read to %d", e.Seq, after, readTo)
			}
			after = e.Seq
		}
		if readTo <= after && len(page) == 0 {
			t.Fatalf("FeedEvents after %d read nothing", after)
		}
		after = readTo
		all = append(all, page...)
	}
	return all
}

func sequence(t *testing.T, db *DB, now time.Time, expiries bool) int {
	t.Helper()
	n, err := db.SequenceFeed(t.Context(), now, expiries)
	if err != nil {
		t.Fatalf("SequenceFeed: %v", err)
	}
	return n
}

func TestFeedHoldsEveryWriteOnceInOrderWithConcurrentSequencers(t *testing.T) {
	db := freshStore(t, "feed_concurrent")
	ctx := t.Context()
	users := []*attrcache.User{createUser(t, db, newUser()), createUser(t, db, newUser())}
	stop := make(chan struct{})
	var sequencers sync.WaitGroup
	var failed atomic.Value
	for range 4 { // four instances' sequencers at once
		sequencers.Add(1)
		go func() {
			defer sequencers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.SequenceFeed(ctx, attrcache.Now(), true); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	// Each writer writes its own names; the expected events follow from what each write answers.
	var mu sync.Mutex
	var want []feedKey
	var writers sync.WaitGroup
	for w := range 6 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			u := users[w%2]
			scope := attrcache.AttrScope{UserID: u.UserID}
			for i := range 20 {
				name := fmt.Sprintf("w%d-%d", w, i%3)
				var got []feedKey
				if i%4 == 3 {
					tomb, err := db.DeleteAttrs(ctx, scope, []string{name}, attrcache.Now())
					if err != nil {
						t.Errorf("DeleteAttrs: %v", err)
						return
					}
					got = append(got, feedKey{attrcache.FeedDelete, u.UserID, "", name, tomb})
				} else {
					stored, err := db.SetAttrs(ctx, scope, []attrcache.AttrWrite{{Name: name, Value: `1`}, {Name: name + "b", Value: `2`}}, attrcache.Now())
					if err != nil {
						t.Errorf("SetAttrs: %v", err)
						return
					}
					for _, a := range stored {
						got = append(got, feedKey{attrcache.FeedSet, u.UserID, "", a.Name, a.Version})
					}
				}
				mu.Lock()
				want = append(want, got...)
				mu.Unlock()
			}
		}()
	}
	writers.Wait()
	close(stop)
	sequencers.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("SequenceFeed: %v", err)
	}
	sequence(t, db, attrcache.Now(), true)

	events := readFeed(t, db, "")
	for i, e := range events {
		if e.Seq != events[0].Seq+int64(i) {
			t.Fatalf("event %d has seq %d, want %d: seqs leave a gap", i, e.Seq, events[0].Seq+int64(i))
		}
	}
	got := make([]feedKey, len(events))
	lastVersion := make(map[string]int64)
	for i, e := range events {
		got[i] = keyOf(e)
		k := e.UserID + "/" + e.Name
		if e.Version <= lastVersion[k] {
			t.Errorf("event %d of %s: version %d after %d", i, k, e.Version, lastVersion[k])
		}
		lastVersion[k] = e.Version
	}
	sortKeys := func(keys []feedKey) {
		slices.SortFunc(keys, func(a, b feedKey) int { return cmpKey(a, b) })
	}
	sortKeys(got)
	sortKeys(want)
	if !slices.Equal(got, want) {
		t.Errorf("the feed holds %d events, want %d (each write once)", len(got), len(want))
	}
	// A user's feed is theirs alone.
	for _, u := range users {
		for _, e := range readFeed(t, db, u.UserID) {
			if e.UserID != u.UserID {
				t.Fatalf("the feed of %s holds an event of %s", u.UserID, e.UserID)
			}
		}
	}
}

func cmpKey(a, b feedKey) int {
	return cmpStrings(fmt.Sprintf("%s|%s|%s|%020d|%s", a.UserID, a.Session, a.Name, a.Version, a.Op),
		fmt.Sprintf("%s|%s|%s|%020d|%s", b.UserID, b.Session, b.Name, b.Version, b.Op))
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestFeedExpireEvents(t *testing.T) {
	db := freshStore(t, "feed_expire")
	ctx := t.Context()
	u := createUser(t, db, newUser())
	s := createSession(t, db, newSession(u.UserID, attrcache.Now().Add(time.Hour)))
	t0 := attrcache.Now()
	soon := t0.Add(time.Second)
	userScope := attrcache.AttrScope{UserID: u.UserID}
	sessionScope := attrcache.AttrScope{UserID: u.UserID, Session: s.Hash}
	a, err := db.SetAttrs(ctx, userScope, []attrcache.AttrWrite{{Name: "short", Value: `1`, ExpiresAt: &soon}, {Name: "long", Value: `1`}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.SetAttrs(ctx, sessionScope, []attrcache.AttrWrite{{Name: "short", Value: `1`, ExpiresAt: &soon}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	sequence(t, db, t0, true)
	if n := sequence(t, db, t0, true); n != 0 {
		t.Errorf("a second sequencing at once added %d events, want 0", n)
	}
	// Before the expiry, a purge deletes nothing; after it, the purge itself logs the expiries
	// first, once, and then deletes the rows.
	if attrs, _, err := db.PurgeExpired(ctx, t0, 10); err != nil || attrs != 0 {
		t.Fatalf("PurgeExpired before the expiry: %d, %v; want 0", attrs, err)
	}
	after := soon.Add(time.Millisecond)
	if n := sequence(t, db, after, false); n != 0 {
		t.Errorf("sequencing without expiries added %d events, want 0", n)
	}
	if attrs, _, err := db.PurgeExpired(ctx, after, 10); err != nil || attrs != 2 {
		t.Fatalf("PurgeExpired after the expiry: %d, %v; want 2", attrs, err)
	}
	if n := sequence(t, db, after, true); n != 0 {
		t.Errorf("sequencing after the purge added %d events, want 0", n)
	}
	var got []feedKey
	for _, e := range readFeed(t, db, u.UserID) {
		got = append(got, keyOf(e))
		if e.Op == attrcache.FeedExpire && !e.Time.Equal(soon) {
			t.Errorf("expire event time %v, want the expiration time %v", e.Time, soon)
		}
	}
	want := []feedKey{
		{attrcache.FeedSet, u.UserID, "", "short", a[0].Version},
		{attrcache.FeedSet, u.UserID, "", "long", a[1].Version},
		{attrcache.FeedSet, u.UserID, s.Hash, "short", b[0].Version},
		{attrcache.FeedExpire, u.UserID, "", "short", a[0].Version},
		{attrcache.FeedExpire, u.UserID, s.Hash, "short", b[0].Version},
	}
	// One write's entries, and one sequencing's expiries, come in an order of their own.
	for _, part := range [][2]int{{0, 2}, {3, 5}} {
		slices.SortStableFunc(got[part[0]:part[1]], cmpKey)
		slices.SortStableFunc(want[part[0]:part[1]], cmpKey)
	}
	if !slices.Equal(got, want) {
		t.Errorf("feed:\n got %v\nwant %v", got, want)
	}
	var marks int
	if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_feed_expired").Scan(&marks); err != nil || marks != 0 {
		t.Errorf("expiry marks left after the purge: %d (%v), want 0", marks, err)
	}
}

func TestPurgeSkipsAnExpiryNotInTheFeed(t *testing.T) {
	db := freshStore(t, "feed_purge_guard")
	u := createUser(t, db, newUser())
	t0 := attrcache.Now()
	soon := t0.Add(time.Second)
	if _, err := db.SetAttrs(t.Context(), attrcache.AttrScope{UserID: u.UserID},
		[]attrcache.AttrWrite{{Name: "a", Value: `1`, ExpiresAt: &soon}}, t0); err != nil {
		t.Fatal(err)
	}
	// The purge's own sequencing is what logs the expiry; without it the row stays.
	n, err := db.purgeExpiredAttrs(t.Context(), soon.Add(time.Second), 10)
	if err != nil || n != 0 {
		t.Fatalf("purgeExpiredAttrs of an expiry not in the feed: %d, %v; want 0", n, err)
	}
}

func TestPurgeFeedAndBounds(t *testing.T) {
	db := freshStore(t, "feed_retention")
	u := createUser(t, db, newUser())
	for i := range 5 {
		if _, err := db.SetAttrs(t.Context(), attrcache.AttrScope{UserID: u.UserID},
			[]attrcache.AttrWrite{{Name: fmt.Sprint(i), Value: `1`}}, attrcache.Now()); err != nil {
			t.Fatal(err)
		}
		sequence(t, db, attrcache.Now(), true) // a page each
	}
	oldest, last, err := db.FeedBounds(t.Context())
	if err != nil || oldest != 1 || last != 5 {
		t.Fatalf("FeedBounds = %d, %d, %v; want 1, 5", oldest, last, err)
	}
	// Two events entered the feed long ago.
	if _, err := db.SQL().ExecContext(t.Context(), "UPDATE sso_feed_page SET fed_time = fed_time - INTERVAL 8 DAY WHERE last_seq <= 2"); err != nil {
		t.Fatal(err)
	}
	n, err := db.PurgeFeed(t.Context(), time.Now().Add(-7*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PurgeFeed = %d, %v; want 2", n, err)
	}
	oldest, last, err = db.FeedBounds(t.Context())
	if err != nil || oldest != 3 || last != 5 {
		t.Fatalf("FeedBounds after the purge = %d, %d, %v; want 3, 5", oldest, last, err)
	}
}

func TestOrderVersions(t *testing.T) {
	ev := func(name string, version int64) attrcache.FeedEvent {
		return attrcache.FeedEvent{UserID: "u", Name: name, Version: version}
	}
	events := []attrcache.FeedEvent{ev("a", 3), ev("b", 9), ev("a", 0), ev("a", 2), ev("b", 8)}
	orderVersions(events)
	want := []attrcache.FeedEvent{ev("a", 2), ev("b", 8), ev("a", 3), ev("a", 0), ev("b", 9)}
	if !slices.Equal(events, want) {
		t.Errorf("orderVersions:\n got %v\nwant %v", events, want)
	}
	// One version's expiry, of an attribute gone with its session, after its set.
	expiry, set := ev("c", 4), ev("c", 4)
	expiry.Op, set.Op = attrcache.FeedExpire, attrcache.FeedSet
	events = []attrcache.FeedEvent{expiry, set}
	orderVersions(events)
	if want := []attrcache.FeedEvent{set, expiry}; !slices.Equal(events, want) {
		t.Errorf("orderVersions of one version:\n got %v\nwant %v", events, want)
	}
}

func TestPurgeWithoutTheFeed(t *testing.T) {
	dsn := freshDSN(t, "feed_off_purge")
	db, err := Open(t.Context(), dsn, testKeys, WithChangeFeed(false))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	u := createUser(t, db, newUser())
	t0 := attrcache.Now()
	soon := t0.Add(time.Second)
	if _, err := db.SetAttrs(t.Context(), attrcache.AttrScope{UserID: u.UserID},
		[]attrcache.AttrWrite{{Name: "short", Value: `1`, ExpiresAt: &soon}, {Name: "long", Value: `1`}}, t0); err != nil {
		t.Fatal(err)
	}
	// Nothing numbers the feed: the expired row goes without its expire event, the live one
	// stays, and the feed stays empty.
	if attrs, _, err := db.PurgeExpired(t.Context(), soon.Add(time.Second), 10); err != nil || attrs != 1 {
		t.Fatalf("PurgeExpired without the feed: %d, %v; want 1", attrs, err)
	}
	if _, last, err := db.FeedBounds(t.Context()); err != nil || last != 0 {
		t.Errorf("FeedBounds: last %d, %v; want 0: the purge numbered the feed", last, err)
	}
	var left []string
	rows, err := db.SQL().QueryContext(t.Context(), "SELECT name FROM sso_attr WHERE user_id = ?", u.UserID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		left = append(left, name)
	}
	if err := rows.Err(); err != nil || !slices.Equal(left, []string{"long"}) {
		t.Errorf("attributes left: %v (%v), want [long]", left, err)
	}
}

// TestFeedEventsOfOneUserSkipOthersPages checks that a read of one user's events finds them in one
// call past more pages of others' events than a call reads (feedScanPages).
func TestFeedEventsOfOneUserSkipOthersPages(t *testing.T) {
	db := freshStore(t, "feed_user_pages")
	other, u := createUser(t, db, newUser()), createUser(t, db, newUser())
	write := func(userID, name string) {
		t.Helper()
		if _, err := db.SetAttrs(t.Context(), attrcache.AttrScope{UserID: userID},
			[]attrcache.AttrWrite{{Name: name, Value: `1`}}, attrcache.Now()); err != nil {
			t.Fatal(err)
		}
		sequence(t, db, attrcache.Now(), false) // a page each
	}
	for i := range feedScanPages + 10 {
		write(other.UserID, fmt.Sprint(i))
	}
	write(u.UserID, "mine")
	_, last, err := db.FeedBounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	events, readTo, err := db.FeedEvents(t.Context(), u.UserID, 0, last, 10)
	if err != nil || len(events) != 1 || events[0].Name != "mine" || readTo != last {
		t.Fatalf("FeedEvents of u = %v, read to %d (last %d), %v; want its one event and the whole feed read", events, readTo, last, err)
	}
	events, readTo, err = db.FeedEvents(t.Context(), "", 0, last, 1000)
	if err != nil || len(events) != feedScanPages || readTo != events[len(events)-1].Seq {
		t.Fatalf("FeedEvents of everyone: %d events, read to %d, %v; want %d, the pages one call reads", len(events), readTo, err, feedScanPages)
	}
}

// TestFeedSequencerWakes: a sequencer numbers a change its own instance logged at once, not at
// its idle poll (an hour here), and a change of another instance, which does not wake it, at its
// idle poll.
func TestFeedSequencerWakes(t *testing.T) {
	open := func() *DB {
		db, err := Open(t.Context(), testDSN, testKeys)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	run := func(db *DB, idlePoll time.Duration) {
		db.feedWake.idlePoll = idlePoll
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			db.RunFeedSequencer(ctx, 5*time.Millisecond, time.Hour, nil)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	u := newUser()
	if err := testDB.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	scope := attrcache.AttrScope{UserID: u.UserID}
	// setAndWait writes name through db and waits for its set event, at most 10 s.
	setAndWait := func(db *DB, name string) {
		t.Helper()
		if _, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{{Name: name, Value: `"v"`}}, attrcache.Now()); err != nil {
			t.Fatalf("SetAttrs: %v", err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if slices.ContainsFunc(readFeed(t, testDB, u.UserID), func(e attrcache.FeedEvent) bool {
				return e.Op == attrcache.FeedSet && e.Name == name
			}) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the set of %s is not in the feed after 10 s", name)
			}
		}
	}

	woken := open()
	run(woken, time.Hour)
	for i := range 3 { // after the first, only a wake-up numbers the change
		setAndWait(woken, fmt.Sprintf("woken-%d", i))
	}

	polling, other := open(), open()
	run(polling, 50*time.Millisecond)
	for i := range 3 {
		setAndWait(other, fmt.Sprintf("polled-%d", i))
	}
}

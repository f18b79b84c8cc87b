package persist

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// goneWant is the one event an attribute gone with its user or session must have in the feed.
type goneWant struct {
	op      attrcache.FeedOp
	version int64
	time    time.Time // zero: not checked
}

func TestFeedEventsOfAttributesGoneWithTheirScope(t *testing.T) {
	db := freshStore(t, "feed_gone")
	ctx := t.Context()
	t0 := attrcache.Now()
	past := t0.Add(-2 * time.Minute)
	want := make(map[attrKey]goneWant)
	// set writes the attributes of scope at now and returns them by name.
	set := func(scope attrcache.AttrScope, now time.Time, items ...attrcache.AttrWrite) map[string]*attrcache.Attr {
		t.Helper()
		byName := make(map[string]*attrcache.Attr)
		for _, a := range setAttrs(t, db, scope, now, items...) {
			byName[a.Name] = a
		}
		return byName
	}
	deleted := func(a *attrcache.Attr) {
		want[attrKey{a.Scope, a.Name}] = goneWant{attrcache.FeedDelete, a.Version + 1, time.Time{}}
	}
	expired := func(a *attrcache.Attr, at time.Time) {
		want[attrKey{a.Scope, a.Name}] = goneWant{attrcache.FeedExpire, a.Version, at}
	}
	logout := func(s *attrcache.Session) {
		t.Helper()
		if err := db.DeleteSession(ctx, s.UserID, s.Hash); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
	}
	sessionOf := func(u *attrcache.User, ends time.Time) (*attrcache.Session, attrcache.AttrScope) {
		s := createSession(t, db, newSession(u.UserID, ends))
		return s, attrcache.AttrScope{UserID: u.UserID, Session: s.Hash}
	}
	u := createUser(t, db, newUser())
	userScope := attrcache.AttrScope{UserID: u.UserID}
	set(userScope, t0, attrcache.AttrWrite{Name: "stays", Value: `1`})

	// Logout of a live session: a delete event for each of its attributes.
	live, liveScope := sessionOf(u, t0.Add(time.Hour))
	for _, a := range set(liveScope, t0, attrcache.AttrWrite{Name: "a", Value: `1`}, attrcache.AttrWrite{Name: "b", Value: `2`}) {
		deleted(a)
	}
	// A session without attributes: nothing.
	empty, _ := sessionOf(u, t0.Add(time.Hour))
	// A session whose attribute x expired, and whose expiry the sequencer logged, before the
	// logout: x has that expire event only.
	mixed, mixedScope := sessionOf(u, t0.Add(time.Hour))
	soonGone := t0.Add(-time.Minute)
	m := set(mixedScope, past, attrcache.AttrWrite{Name: "x", Value: `1`, ExpiresAt: &soonGone}, attrcache.AttrWrite{Name: "y", Value: `2`})
	expired(m["x"], soonGone)
	deleted(m["y"])
	// Logout of a session that ended before the sequencer looked: expire events at its end.
	endedAt := t0.Add(-time.Minute)
	ended, endedScope := sessionOf(u, endedAt)
	for _, a := range set(endedScope, past, attrcache.AttrWrite{Name: "e", Value: `1`}) {
		expired(a, endedAt)
	}
	// A session that ends under the sequencer's eyes, then purged: expire events at its end.
	scannedAt := t0.Add(time.Second)
	_, scannedScope := sessionOf(u, scannedAt)
	for _, a := range set(scannedScope, t0, attrcache.AttrWrite{Name: "s", Value: `1`}, attrcache.AttrWrite{Name: "t", Value: `2`}) {
		expired(a, scannedAt)
	}
	// A session that ended long before the sequencer looked, purged: the purge logs the expiries.
	_, purgedScope := sessionOf(u, endedAt)
	for _, a := range set(purgedScope, past, attrcache.AttrWrite{Name: "p", Value: `1`}) {
		expired(a, endedAt)
	}
	// A user deleted with user and session attributes, one of them expired and logged.
	v := createUser(t, db, newUser())
	vScope := attrcache.AttrScope{UserID: v.UserID}
	vs := set(vScope, past, attrcache.AttrWrite{Name: "q", Value: `1`}, attrcache.AttrWrite{Name: "old", Value: `2`, ExpiresAt: &soonGone})
	deleted(vs["q"])
	expired(vs["old"], soonGone)
	_, vSessionScope := sessionOf(v, t0.Add(time.Hour))
	for _, a := range set(vSessionScope, t0, attrcache.AttrWrite{Name: "r", Value: `1`}) {
		deleted(a)
	}

	sequence(t, db, t0, true) // the expiries of x and old
	logout(live)
	logout(empty)
	logout(mixed)
	logout(ended)
	if _, err := db.DeleteUser(ctx, v.UserID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	sequence(t, db, scannedAt.Add(500*time.Millisecond), true) // the end of the scanned session
	if _, sessions, err := db.PurgeExpired(ctx, scannedAt.Add(time.Second), 10); err != nil || sessions != 2 {
		t.Fatalf("PurgeExpired: %d sessions, %v; want 2", sessions, err)
	}
	if n := sequence(t, db, scannedAt.Add(2*time.Second), true); n != 1 {
		t.Errorf("sequencing after the purge added %d events, want 1: p's", n)
	}

	events := readFeed(t, db, "")
	byAttr := make(map[attrKey][]attrcache.FeedEvent)
	for _, e := range events {
		if e.UserID != u.UserID && e.UserID != v.UserID {
			continue
		}
		if e.Session == empty.Hash {
			t.Errorf("event %+v of the session without attributes", e)
		}
		k := attrKey{attrcache.AttrScope{UserID: e.UserID, Session: e.Session}, e.Name}
		byAttr[k] = append(byAttr[k], e)
	}
	for k, w := range want {
		got := byAttr[k]
		if len(got) != 2 || got[0].Op != attrcache.FeedSet {
			t.Errorf("%s/%s: events %+v, want its set and one %s", k.scope.Session, k.name, got, w.op)
			continue
		}
		gone := got[1]
		if gone.Op != w.op || gone.Version != w.version {
			t.Errorf("%s/%s: %s of version %d, want %s of version %d", k.scope.Session, k.name, gone.Op, gone.Version, w.op, w.version)
		}
		if gone.Version < got[0].Version || (gone.Op == attrcache.FeedDelete && gone.Version == got[0].Version) {
			t.Errorf("%s/%s: %s of version %d after the set of version %d", k.scope.Session, k.name, gone.Op, gone.Version, got[0].Version)
		}
		if !w.time.IsZero() && !gone.Time.Equal(w.time) {
			t.Errorf("%s/%s: %s at %v, want %v", k.scope.Session, k.name, gone.Op, gone.Time, w.time)
		}
	}
	if got := byAttr[attrKey{userScope, "stays"}]; len(got) != 1 {
		t.Errorf("events of a user attribute that stays: %+v, want its set", got)
	}
	if len(byAttr) != len(want)+1 {
		t.Errorf("events of %d attributes, want %d", len(byAttr), len(want)+1)
	}
	var marks int
	if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_feed_expired").Scan(&marks); err != nil || marks != 0 {
		t.Errorf("expiry marks left: %d (%v), want 0", marks, err)
	}
}

// A row deleted while the sequencer, which had read it, logged its expiry: the deletion's entry
// finds the mark, and the expiry stays the one event.
func TestFeedDropsAGoneEntryWhoseExpiryIsFed(t *testing.T) {
	db := freshStore(t, "feed_gone_fed")
	ctx := t.Context()
	t0 := attrcache.Now()
	u := createUser(t, db, newUser())
	s := createSession(t, db, newSession(u.UserID, t0.Add(time.Hour)))
	scope := attrcache.AttrScope{UserID: u.UserID, Session: s.Hash}
	stored := setAttrs(t, db, scope, t0, attrcache.AttrWrite{Name: "z", Value: `1`}, attrcache.AttrWrite{Name: "w", Value: `1`})
	slices.SortFunc(stored, func(a, b *attrcache.Attr) int { return cmp.Compare(a.Name, b.Name) })
	if err := db.DeleteSession(ctx, u.UserID, s.Hash); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	// What the sequencer would have committed once the deletion released its locks.
	if _, err := db.SQL().ExecContext(ctx, "INSERT INTO sso_feed_expired (user_id, ust_hash, name, version) VALUES (?, ?, 'z', ?)",
		u.UserID, s.Hash, stored[1].Version); err != nil {
		t.Fatal(err)
	}
	sequence(t, db, t0, false)
	var got []feedKey
	for _, e := range readFeed(t, db, u.UserID) {
		got = append(got, keyOf(e))
	}
	want := []feedKey{
		{attrcache.FeedSet, u.UserID, s.Hash, "w", stored[0].Version},
		{attrcache.FeedSet, u.UserID, s.Hash, "z", stored[1].Version},
		{attrcache.FeedDelete, u.UserID, s.Hash, "w", stored[0].Version + 1},
	}
	slices.SortStableFunc(got[:2], cmpKey)
	if !slices.Equal(got, want) {
		t.Errorf("feed:\n got %v\nwant %v", got, want)
	}
	var marks int
	if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_feed_expired").Scan(&marks); err != nil || marks != 0 {
		t.Errorf("expiry marks left: %d (%v), want 0", marks, err)
	}
}

// Sessions end, by logout, by time and with their user, while four sequencers (on a clock of
// their own, ahead of the deleters' and then behind) and a purger run: every attribute still has
// exactly one event after its set.
func TestFeedGoneExactlyOnceWithConcurrentSequencers(t *testing.T) {
	db := freshStore(t, "feed_gone_race")
	ctx := t.Context()
	t0 := attrcache.Now()
	u := createUser(t, db, newUser())
	const sessions = 60
	var hashes []attrcache.SessionHash
	for i := range sessions {
		s := createSession(t, db, newSession(u.UserID, t0.Add(time.Duration(i-sessions/2)*100*time.Millisecond)))
		hashes = append(hashes, s.Hash)
		expiresAt := t0.Add(time.Duration(i%7-3) * 100 * time.Millisecond)
		setAttrs(t, db, attrcache.AttrScope{UserID: u.UserID, Session: s.Hash}, t0.Add(-time.Hour),
			attrcache.AttrWrite{Name: "a", Value: `1`}, attrcache.AttrWrite{Name: "b", Value: `2`, ExpiresAt: &expiresAt})
	}
	setAttrs(t, db, attrcache.AttrScope{UserID: u.UserID}, t0, attrcache.AttrWrite{Name: "u", Value: `1`})

	var ticks atomic.Int64 // the sequencers' and the purger's clock: from t0 - 4 s on, 20 ms a call
	now := func() time.Time { return t0.Add(-4*time.Second + time.Duration(ticks.Add(1))*20*time.Millisecond) }
	stop := make(chan struct{})
	var workers sync.WaitGroup
	var failed atomic.Value
	for i := range 5 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i == 4 {
					_, _, err = db.PurgeExpired(ctx, now(), 7)
				} else {
					_, err = db.SequenceFeed(ctx, now(), true)
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	// awaitTick waits, within a bound, until the sequencers' clock has reached tick.
	awaitTick := func(tick int64) bool {
		for deadline := time.Now().Add(time.Minute); ticks.Load() < tick; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("the sequencers' clock is at tick %d after a minute, want %d", ticks.Load(), tick)
				return false
			}
		}
		return true
	}
	var logouts sync.WaitGroup
	for w := range 2 {
		logouts.Add(1)
		go func() {
			defer logouts.Done()
			// Two sessions in three, each when the sequencers' clock comes to its end.
			for i := w; i < sessions; i += 3 {
				if !awaitTick(int64(5*i + 50)) {
					return
				}
				if err := db.DeleteSession(ctx, u.UserID, hashes[i]); err != nil {
					t.Errorf("DeleteSession: %v", err)
				}
			}
		}()
	}
	logouts.Wait()
	awaitTick(400) // t0 + 4 s: every session has ended on the sequencers' clock
	close(stop)
	workers.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("a sequencer or the purger: %v", err)
	}
	if _, err := db.DeleteUser(ctx, u.UserID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	sequence(t, db, t0.Add(time.Hour), true)

	type attr struct {
		session attrcache.SessionHash
		name    string
	}
	events := make(map[attr][]attrcache.FeedEvent)
	for _, e := range readFeed(t, db, u.UserID) {
		k := attr{e.Session, e.Name}
		events[k] = append(events[k], e)
	}
	if len(events) != 2*sessions+1 {
		t.Errorf("events of %d attributes, want %d", len(events), 2*sessions+1)
	}
	for k, got := range events {
		if len(got) != 2 || got[0].Op != attrcache.FeedSet || got[1].Op == attrcache.FeedSet ||
			got[1].Version < got[0].Version || (got[1].Op == attrcache.FeedDelete && got[1].Version == got[0].Version) {
			t.Errorf("%s/%s: events %+v, want its set and one delete or expire after it", k.session, k.name, got)
		}
	}
	var marks int
	if err := db.SQL().QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_feed_expired").Scan(&marks); err != nil || marks != 0 {
		t.Errorf("expiry marks left: %d (%v), want 0", marks, err)
	}
}

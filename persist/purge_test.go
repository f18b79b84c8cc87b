package persist

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// purgeFixture is a store of its own holding attributes and sessions that have ended by purgeAt
// and others that have not.
type purgeFixture struct {
	db      *DB
	purgeAt time.Time
	// What a purge at purgeAt deletes and keeps.
	expiredAttrs, endedSessions int
	keptAttrs                   map[attrcache.AttrScope][]string
	keptSessions                []attrcache.SessionHash
}

// newPurgeFixture stores at t0, in a new database: a user with five attributes that have expired
// by purgeAt (two hours later) and two that never expire; three sessions that have ended by then,
// with two attributes each; a session that has not, with one attribute that has expired and one
// that has not.
func newPurgeFixture(t *testing.T, name string, t0 time.Time) *purgeFixture {
	t.Helper()
	expires, sessionEnds := t0.Add(time.Minute), t0.Add(time.Hour)
	f := &purgeFixture{
		db:            freshStore(t, name),
		purgeAt:       t0.Add(2 * time.Hour),
		expiredAttrs:  5 + 3*2 + 1,
		endedSessions: 3,
		keptAttrs:     make(map[attrcache.AttrScope][]string),
	}
	u := createUser(t, f.db, newUser())
	user := attrcache.AttrScope{UserID: u.UserID}
	var items []attrcache.AttrWrite
	for i := range 5 {
		items = append(items, attrcache.AttrWrite{Name: fmt.Sprintf("expired-%d", i), Value: `1`, ExpiresAt: &expires})
	}
	items = append(items, attrcache.AttrWrite{Name: "kept-1", Value: `1`}, attrcache.AttrWrite{Name: "kept-2", Value: `2`})
	setAttrs(t, f.db, user, t0, items...)
	f.keptAttrs[user] = []string{"kept-1", "kept-2"}

	for range f.endedSessions {
		s := createSession(t, f.db, newSession(u.UserID, sessionEnds))
		setAttrs(t, f.db, attrcache.AttrScope{UserID: u.UserID, Session: s.Hash}, t0,
			attrcache.AttrWrite{Name: "a", Value: `1`}, attrcache.AttrWrite{Name: "b", Value: `2`})
	}
	live := createSession(t, f.db, newSession(u.UserID, t0.Add(24*time.Hour)))
	liveScope := attrcache.AttrScope{UserID: u.UserID, Session: live.Hash}
	setAttrs(t, f.db, liveScope, t0,
		attrcache.AttrWrite{Name: "kept", Value: `1`},
		attrcache.AttrWrite{Name: "expired", Value: `2`, ExpiresAt: &expires})
	f.keptAttrs[liveScope] = []string{"kept"}
	f.keptSessions = []attrcache.SessionHash{live.Hash}
	return f
}

// check fails the test unless the store holds exactly the rows the fixture keeps.
func (f *purgeFixture) check(t *testing.T) {
	t.Helper()
	var total int
	if err := f.db.SQL().QueryRowContext(t.Context(), "SELECT COUNT(*) FROM sso_attr").Scan(&total); err != nil {
		t.Fatal(err)
	}
	var want int
	for scope, names := range f.keptAttrs {
		want += len(names)
		if got := slices.Sorted(maps.Keys(storedAttrs(t, f.db, scope))); !slices.Equal(got, names) {
			t.Errorf("attributes of %+v left: %v, want %v", scope, got, names)
		}
	}
	if total != want {
		t.Errorf("%d attributes left, want %d", total, want)
	}
	rows, err := f.db.SQL().QueryContext(t.Context(), "SELECT ust_hash FROM sso_session")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sessions []attrcache.SessionHash
	for rows.Next() {
		var hash attrcache.SessionHash
		if err := rows.Scan(&hash); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, hash)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sessions, f.keptSessions) {
		t.Errorf("sessions left: %v, want %v", sessions, f.keptSessions)
	}
}

func TestPurgeExpired(t *testing.T) {
	tests := []struct {
		name  string
		batch int
	}{
		{"batches smaller than what there is to purge", 2},
		{"one row per batch", 1},
		{"one batch", 1000},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newPurgeFixture(t, fmt.Sprintf("persist_purge_%d", i), attrcache.Now())
			attrs, sessions, err := f.db.PurgeExpired(t.Context(), f.purgeAt, tt.batch)
			if err != nil {
				t.Fatalf("PurgeExpired: %v", err)
			}
			if attrs != f.expiredAttrs || sessions != f.endedSessions {
				t.Errorf("PurgeExpired = %d attributes, %d sessions; want %d, %d", attrs, sessions, f.expiredAttrs, f.endedSessions)
			}
			f.check(t)

			attrs, sessions, err = f.db.PurgeExpired(t.Context(), f.purgeAt, tt.batch)
			if attrs != 0 || sessions != 0 || err != nil {
				t.Errorf("PurgeExpired again = %d, %d, %v; want 0, 0, nil", attrs, sessions, err)
			}
		})
	}
}

func TestPurgeExpiredKeepsWhatHasNotExpired(t *testing.T) {
	t0 := attrcache.Now()
	f := newPurgeFixture(t, "persist_purge_early", t0)
	beforeAnyExpiry := t0.Add(30 * time.Second)
	attrs, sessions, err := f.db.PurgeExpired(t.Context(), beforeAnyExpiry, 2)
	if attrs != 0 || sessions != 0 || err != nil {
		t.Errorf("PurgeExpired = %d, %d, %v; want 0, 0, nil", attrs, sessions, err)
	}
	var total int
	if err := f.db.SQL().QueryRowContext(t.Context(), "SELECT COUNT(*) FROM sso_attr").Scan(&total); err != nil {
		t.Fatal(err)
	}
	if want := 7 + 3*2 + 2; total != want {
		t.Errorf("%d attributes left, want all %d", total, want)
	}
}

func TestPurgeExpiredErrors(t *testing.T) {
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		batch int
		want  error // nil: any error
	}{
		{"batch 0", t.Context(), 0, nil},
		{"ended context", canceled, 10, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := testDB.PurgeExpired(tt.ctx, attrcache.Now(), tt.batch)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("PurgeExpired error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRunPurger(t *testing.T) {
	// RunPurger purges at the current time: the fixture's rows expire by an hour ago.
	f := newPurgeFixture(t, "persist_purge_run", attrcache.Now().Add(-3*time.Hour))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	type report struct {
		attrs, sessions int
		err             error
	}
	reports := make(chan report, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.db.RunPurger(ctx, time.Hour, 2, func(attrs, sessions int, err error) {
			reports <- report{attrs, sessions, err}
		})
	}()

	select {
	case got := <-reports:
		want := report{attrs: f.expiredAttrs, sessions: f.endedSessions}
		if got != want {
			t.Errorf("first run reported %+v, want %+v", got, want)
		}
		f.check(t)
	case <-time.After(time.Minute):
		t.Fatal("RunPurger did not report its first run within a minute")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("RunPurger did not return within a minute of its context ending")
	}
}

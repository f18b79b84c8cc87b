package persist

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/internal/testenv"
)

// openWithDBClock opens dsn, migrated already, with the database clock of every connection
// frozen at clock (testenv.WithFrozenDBClock), and closes it when the test ends.
func openWithDBClock(t *testing.T, dsn string, clock time.Time, opts ...Option) *DB {
	t.Helper()
	frozen, err := testenv.WithFrozenDBClock(dsn, clock)
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), frozen, testKeys, opts...)
	if err != nil {
		t.Fatalf("Open with the database clock at %v: %v", clock, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// The kinds of step of TestAttrVersionsGrowWhateverTheClock.
const (
	stepSet = iota
	stepCreate
	stepUpdate
	stepDelete
	stepPurge
)

func TestAttrVersionsGrowWhateverTheClock(t *testing.T) {
	dsn := freshDSN(t, "persist_version_clock")
	normal := openDB(t, dsn)
	if _, err := normal.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	serverNow := attrcache.Now()
	behind := openWithDBClock(t, dsn, serverNow.Add(-time.Hour))
	behindGrouped := openWithDBClock(t, dsn, serverNow.Add(-time.Hour),
		WithGroupCommit(GroupCommit{MaxRows: 16, MaxWait: time.Millisecond, Workers: 2}))
	ahead := openWithDBClock(t, dsn, serverNow.Add(time.Hour))

	t0 := attrcache.Now()
	inAMinute, later := t0.Add(time.Minute), t0.Add(2*time.Minute)
	u := createUser(t, normal, newUser())
	session := createSession(t, normal, newSession(u.UserID, t0.Add(time.Hour)))
	scopes := []struct {
		name  string
		scope attrcache.AttrScope
	}{
		{"user attribute", attrcache.AttrScope{UserID: u.UserID}},
		{"session attribute", attrcache.AttrScope{UserID: u.UserID, Session: session.Hash}},
	}
	// Each step's version (a tombstone's for a deletion) must be above every earlier one; a
	// purge has none, and the write after it must be above the purged row's.
	steps := []struct {
		name    string
		kind    int
		db      *DB
		at      time.Time
		expires *time.Time
	}{
		{"set", stepSet, normal, t0, nil},
		{"delete", stepDelete, normal, t0, nil},
		{"set again through a clock an hour behind", stepSet, behind, t0, nil},
		{"update through the clock behind", stepUpdate, behind, t0, nil},
		{"set through the clock on time", stepSet, normal, t0, nil},
		{"set through the clock behind, group commit", stepSet, behindGrouped, t0, nil},
		{"delete through the clock behind", stepDelete, behind, t0, nil},
		{"delete the missing attribute through the clock behind", stepDelete, behind, t0, nil},
		{"set again through the clock behind, group commit", stepSet, behindGrouped, t0, nil},
		{"set through a clock an hour ahead", stepSet, ahead, t0, nil},
		{"delete through the clock ahead", stepDelete, ahead, t0, nil},
		{"create after the clock stepped back", stepCreate, normal, t0, nil},
		{"set to expire through the clock ahead", stepSet, ahead, t0, &inAMinute},
		{"purge the expired attribute", stepPurge, normal, later, nil},
		{"set after the purge", stepSet, normal, later, nil},
		{"set to expire again through the clock ahead", stepSet, ahead, later, &inAMinute},
		{"create over the expired attribute", stepCreate, normal, later, nil},
		{"set to expire once more through the clock ahead", stepSet, ahead, later, &inAMinute},
		{"purge it again", stepPurge, normal, later, nil},
		{"create after the purge through the clock behind", stepCreate, behind, later, nil},
	}
	for _, sc := range scopes {
		t.Run(sc.name, func(t *testing.T) {
			var previous int64
			for _, step := range steps {
				if step.kind == stepPurge {
					purged, _, err := step.db.PurgeExpired(t.Context(), step.at, 100)
					if err != nil || purged != 1 {
						t.Fatalf("%s: purged %d attributes, %v; want 1", step.name, purged, err)
					}
					continue
				}
				version, err := versionOfStep(t.Context(), step.kind, step.db, sc.scope, step.at, step.expires)
				if err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				if version <= previous {
					t.Errorf("%s: version %d, want more than the previous %d", step.name, version, previous)
				}
				previous = version
			}
		})
	}
}

// versionOfStep writes attribute "a" of scope at now as kind says, through db, and returns the
// version it stored, or the tombstone of a deletion.
func versionOfStep(ctx context.Context, kind int, db *DB, scope attrcache.AttrScope, now time.Time, expires *time.Time) (int64, error) {
	if kind == stepDelete {
		return db.DeleteAttrs(ctx, scope, []string{"a"}, now)
	}
	write := map[int]attrWriter{stepSet: db.SetAttrs, stepCreate: db.CreateAttrs, stepUpdate: db.UpdateAttrs}[kind]
	written, err := write(ctx, scope, []attrcache.AttrWrite{{Name: "a", Value: `1`, ExpiresAt: expires}}, now)
	if err != nil {
		return 0, err
	}
	if len(written) != 1 {
		return 0, fmt.Errorf("wrote %d attributes, want 1", len(written))
	}
	return written[0].Version, nil
}

func TestAttrVersionsGrowUnderConcurrentWritesAndDeletes(t *testing.T) {
	dsn := freshDSN(t, "persist_version_race")
	normal := openDB(t, dsn)
	if _, err := normal.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	serverNow := attrcache.Now()
	behind := openWithDBClock(t, dsn, serverNow.Add(-time.Hour))
	behindGrouped := openWithDBClock(t, dsn, serverNow.Add(-time.Hour),
		WithGroupCommit(GroupCommit{MaxRows: 16, MaxWait: time.Millisecond, Workers: 2}))
	u := createUser(t, normal, newUser())
	session := createSession(t, normal, newSession(u.UserID, serverNow.Add(time.Hour)))

	// Each worker writes or deletes attribute "a" of one scope through its own store, in turn
	// with the others; an operation that starts after another has returned must give a
	// version (a tombstone for a deletion) above that one's, and none may fail.
	// One worker sets it to have expired already, and the purger deletes expired rows.
	workers := []struct {
		kind    int
		db      *DB
		expired bool
	}{
		{stepSet, normal, false},
		{stepSet, behindGrouped, false},
		{stepCreate, behind, false},
		{stepUpdate, behind, false},
		{stepDelete, normal, false},
		{stepDelete, behind, false},
		{stepSet, normal, true},
		{stepPurge, behind, false},
	}
	const opsPerWorker = 40
	for _, scope := range []attrcache.AttrScope{{UserID: u.UserID}, {UserID: u.UserID, Session: session.Hash}} {
		var mu sync.Mutex
		var highest int64 // the highest version an operation has returned
		var wg sync.WaitGroup
		errs := make(chan error, len(workers)*opsPerWorker)
		for _, w := range workers {
			wg.Go(func() {
				for range opsPerWorker {
					now := attrcache.Now()
					if w.kind == stepPurge {
						if _, _, err := w.db.PurgeExpired(t.Context(), now, 100); err != nil {
							errs <- fmt.Errorf("purge: %w", err)
							return
						}
						continue
					}
					var expires *time.Time
					if w.expired {
						expires = ptr(now.Add(-time.Second))
					}
					mu.Lock()
					before := highest
					mu.Unlock()
					version, err := versionOfStep(t.Context(), w.kind, w.db, scope, now, expires)
					switch {
					case errors.Is(err, attrcache.ErrConflict) && w.kind == stepCreate:
						continue // the attribute exists
					case err != nil && w.kind == stepUpdate && strings.Contains(err.Error(), "wrote 0"):
						continue // the attribute is missing
					case err != nil:
						errs <- fmt.Errorf("kind %d: %w", w.kind, err)
						return
					case version <= before:
						errs <- fmt.Errorf("kind %d: version %d, want more than %d, returned before it started", w.kind, version, before)
					}
					mu.Lock()
					highest = max(highest, version)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("scope %+v: %v", scope, err)
		}
	}
}

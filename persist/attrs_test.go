package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// userScope returns the attribute scope of a new user.
func userScope(t *testing.T) attrcache.AttrScope {
	t.Helper()
	u := createUser(t, testDB, newUser())
	return attrcache.AttrScope{UserID: u.UserID}
}

// sessionScope returns the attribute scope of a new session, of a new user, that ends at endsAt.
func sessionScope(t *testing.T, endsAt time.Time) attrcache.AttrScope {
	t.Helper()
	u := createUser(t, testDB, newUser())
	s := createSession(t, testDB, newSession(u.UserID, endsAt))
	return attrcache.AttrScope{UserID: u.UserID, Session: s.Hash}
}

// setAttrs stores items in scope at now, failing the test if it cannot.
func setAttrs(t *testing.T, db *DB, scope attrcache.AttrScope, now time.Time, items ...attrcache.AttrWrite) []*attrcache.Attr {
	t.Helper()
	stored, err := db.SetAttrs(t.Context(), scope, items, now)
	if err != nil {
		t.Fatalf("SetAttrs: %v", err)
	}
	return stored
}

// storedAttrs returns every row of scope, expired or not, keyed by name.
func storedAttrs(t *testing.T, db *DB, scope attrcache.AttrScope) map[string]*attrcache.Attr {
	t.Helper()
	attrs, err := queryAttrs(t.Context(), db.SQL(),
		"SELECT "+attrColumns+" FROM sso_attr WHERE user_id = ? AND ust_hash = ?", scope.UserID, scope.Session)
	if err != nil {
		t.Fatalf("reading the rows of %+v: %v", scope, err)
	}
	return attrs
}

// wantAttr returns the attribute that writing item into scope should store, without its version.
func wantAttr(scope attrcache.AttrScope, item attrcache.AttrWrite, created, modified, expires time.Time) *attrcache.Attr {
	return &attrcache.Attr{
		Scope: scope, Name: item.Name, Value: item.Value, IsEncrypted: item.IsEncrypted,
		CreationTime: created, LastModified: modified, ExpirationTime: expires,
	}
}

// created returns the attributes that creating items in scope at now should store, without
// their versions.
func created(scope attrcache.AttrScope, now time.Time, items ...attrcache.AttrWrite) []*attrcache.Attr {
	want := make([]*attrcache.Attr, len(items))
	for i, item := range items {
		expires := attrcache.NeverExpires
		if item.ExpiresAt != nil {
			expires = *item.ExpiresAt
		}
		want[i] = wantAttr(scope, item, now, now, expires)
	}
	return want
}

// checkAttrs fails the test unless got holds want, in order, with versions above zero (want's
// versions are not compared).
func checkAttrs(t *testing.T, what string, got, want []*attrcache.Attr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s returned %d attributes, want %d: %v", what, len(got), len(want), attrNamesOf(got))
	}
	for i := range got {
		g := *got[i]
		if g.Version <= 0 {
			t.Errorf("%s: %s has version %d, want one above 0", what, g.Name, g.Version)
		}
		g.Version = 0
		if !reflect.DeepEqual(&g, want[i]) {
			t.Errorf("%s, attribute %d:\n got %+v\nwant %+v", what, i, &g, want[i])
		}
	}
}

// attrNamesOf returns the names of attrs, in order.
func attrNamesOf(attrs []*attrcache.Attr) []string {
	names := make([]string, len(attrs))
	for i, a := range attrs {
		names[i] = a.Name
	}
	return names
}

// byName returns attrs keyed by name.
func byName(attrs []*attrcache.Attr) map[string]*attrcache.Attr {
	m := make(map[string]*attrcache.Attr, len(attrs))
	for _, a := range attrs {
		m[a.Name] = a
	}
	return m
}

// checkReadBack fails the test unless Attrs, at now, returns exactly want.
func checkReadBack(t *testing.T, db *DB, scope attrcache.AttrScope, now time.Time, want []*attrcache.Attr) {
	t.Helper()
	got, err := db.Attrs(t.Context(), scope, attrNamesOf(want), now)
	if err != nil {
		t.Fatalf("Attrs: %v", err)
	}
	if !reflect.DeepEqual(got, byName(want)) {
		t.Errorf("Attrs:\n got %v\nwant %v", got, byName(want))
	}
}

func TestSetAttrsCreates(t *testing.T) {
	now := attrcache.Now()
	inAnHour := now.Add(time.Hour)
	tests := []struct {
		name  string
		items []attrcache.AttrWrite
	}{
		{"one", []attrcache.AttrWrite{{Name: "color", Value: `"blue"`}}},
		{"many", []attrcache.AttrWrite{
			{Name: "zeta", Value: `1`, ExpiresAt: &inAnHour},
			{Name: "alpha", Value: `"ac1.k1.c2VhbGVk"`, IsEncrypted: true},
			{Name: "ünïcode name", Value: `{"a":[1,"two",null]}`},
			{Name: "empty", Value: `""`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := userScope(t)
			got := setAttrs(t, testDB, scope, now, tt.items...)
			checkAttrs(t, "SetAttrs", got, created(scope, now, tt.items...))
			checkReadBack(t, testDB, scope, now, got)
		})
	}
}

func TestWritesOverExistingAttr(t *testing.T) {
	t0 := attrcache.Now()
	inAMinute, inAnHour, inADay := t0.Add(time.Minute), t0.Add(time.Hour), t0.Add(24*time.Hour)
	soon, later := t0.Add(10*time.Second), t0.Add(2*time.Minute) // later: after inAMinute
	tests := []struct {
		name        string
		storedUntil *time.Time // the stored attribute's expiry (nil: never)
		at          time.Time  // when the second write comes
		expiresAt   *time.Time // the second write's
		// What SetAttrs should leave; UpdateAttrs should do the same to a live attribute and
		// leave an expired one alone.
		wantCreated, wantExpires time.Time
		live                     bool
	}{
		{"live, no expiry given: expiry kept", &inAnHour, soon, nil, t0, inAnHour, true},
		{"live, expiry given: replaced", &inAnHour, soon, &inADay, t0, inADay, true},
		{"live and never expiring, expiry given", nil, soon, &inAnHour, t0, inAnHour, true},
		{"live and never expiring, no expiry given", nil, soon, nil, t0, attrcache.NeverExpires, true},
		{"expired, no expiry given: as if absent", &inAMinute, later, nil, later, attrcache.NeverExpires, false},
		{"expired, expiry given: as if absent", &inAMinute, later, &inADay, later, inADay, false},
	}
	for _, tt := range tests {
		first := attrcache.AttrWrite{Name: "a", Value: `"plain"`, ExpiresAt: tt.storedUntil}
		second := attrcache.AttrWrite{Name: "a", Value: `"ac1.k1.c2VhbGVk"`, IsEncrypted: true, ExpiresAt: tt.expiresAt}

		for _, store := range stores() {
			t.Run("SetAttrs"+store.name+": "+tt.name, func(t *testing.T) {
				scope := userScope(t)
				before := setAttrs(t, store.db, scope, t0, first)[0]
				got := setAttrs(t, store.db, scope, tt.at, second)
				checkAttrs(t, "SetAttrs", got, []*attrcache.Attr{wantAttr(scope, second, tt.wantCreated, tt.at, tt.wantExpires)})
				if got[0].Version <= before.Version {
					t.Errorf("version went from %d to %d, want it to grow", before.Version, got[0].Version)
				}
				checkReadBack(t, testDB, scope, tt.at, got)
			})
		}

		t.Run("UpdateAttrs: "+tt.name, func(t *testing.T) {
			scope := userScope(t)
			before := setAttrs(t, testDB, scope, t0, first)[0]
			got, err := testDB.UpdateAttrs(t.Context(), scope, []attrcache.AttrWrite{second}, tt.at)
			if err != nil {
				t.Fatalf("UpdateAttrs: %v", err)
			}
			if !tt.live {
				if len(got) != 0 {
					t.Errorf("UpdateAttrs of an expired attribute returned %v, want nothing", attrNamesOf(got))
				}
				if stored := storedAttrs(t, testDB, scope)["a"]; !reflect.DeepEqual(stored, before) {
					t.Errorf("the expired row became\n%+v\nwant it untouched\n%+v", stored, before)
				}
				return
			}
			checkAttrs(t, "UpdateAttrs", got, []*attrcache.Attr{wantAttr(scope, second, tt.wantCreated, tt.at, tt.wantExpires)})
			if got[0].Version <= before.Version {
				t.Errorf("version went from %d to %d, want it to grow", before.Version, got[0].Version)
			}
			checkReadBack(t, testDB, scope, tt.at, got)
		})
	}
}

func TestWritesOfRepeatedNames(t *testing.T) {
	now := attrcache.Now()
	items := []attrcache.AttrWrite{
		{Name: "a", Value: `1`},
		{Name: "b", Value: `2`},
		{Name: "a", Value: `3`, IsEncrypted: true},
	}
	last := []attrcache.AttrWrite{items[2], items[1]} // the last item of a name, at its first place

	t.Run("SetAttrs: the last item wins", func(t *testing.T) {
		scope := userScope(t)
		got := setAttrs(t, testDB, scope, now, items...)
		checkAttrs(t, "SetAttrs", got, created(scope, now, last...))
		checkReadBack(t, testDB, scope, now, got)
	})
	t.Run("UpdateAttrs: the last item wins", func(t *testing.T) {
		scope := userScope(t)
		setAttrs(t, testDB, scope, now, attrcache.AttrWrite{Name: "a", Value: `0`}, attrcache.AttrWrite{Name: "b", Value: `0`})
		got, err := testDB.UpdateAttrs(t.Context(), scope, items, now)
		if err != nil {
			t.Fatalf("UpdateAttrs: %v", err)
		}
		checkAttrs(t, "UpdateAttrs", got, created(scope, now, last...))
	})
	t.Run("CreateAttrs: a conflict", func(t *testing.T) {
		scope := userScope(t)
		if _, err := testDB.CreateAttrs(t.Context(), scope, items, now); !errors.Is(err, attrcache.ErrConflict) {
			t.Errorf("CreateAttrs error = %v, want ErrConflict", err)
		}
		if stored := storedAttrs(t, testDB, scope); len(stored) != 0 {
			t.Errorf("CreateAttrs stored %v, want nothing", slices.Sorted(maps.Keys(stored)))
		}
	})
}

func TestCreateAttrs(t *testing.T) {
	now := attrcache.Now()
	inAnHour := now.Add(time.Hour)
	tests := []struct {
		name  string
		items []attrcache.AttrWrite
	}{
		{"one", []attrcache.AttrWrite{{Name: "a", Value: `"x"`}}},
		{"many", []attrcache.AttrWrite{
			{Name: "c", Value: `3`, ExpiresAt: &inAnHour},
			{Name: "a", Value: `"ac1.k1.c2VhbGVk"`, IsEncrypted: true},
			{Name: "b", Value: `[]`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := userScope(t)
			got, err := testDB.CreateAttrs(t.Context(), scope, tt.items, now)
			if err != nil {
				t.Fatalf("CreateAttrs: %v", err)
			}
			checkAttrs(t, "CreateAttrs", got, created(scope, now, tt.items...)) // last_modified == creation_time
			checkReadBack(t, testDB, scope, now, got)
		})
	}
}

func TestCreateAttrsConflict(t *testing.T) {
	now := attrcache.Now()
	inAMinute := now.Add(time.Minute)
	tests := []struct {
		name  string
		items []attrcache.AttrWrite
	}{
		{"one that exists", []attrcache.AttrWrite{{Name: "live", Value: `1`}}},
		{"many, one of which exists", []attrcache.AttrWrite{
			{Name: "new-1", Value: `1`}, {Name: "live", Value: `2`}, {Name: "new-2", Value: `3`},
		}},
		{"one that exists but expires later", []attrcache.AttrWrite{{Name: "expiring", Value: `1`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scope := userScope(t)
			setAttrs(t, testDB, scope, now,
				attrcache.AttrWrite{Name: "live", Value: `"old"`},
				attrcache.AttrWrite{Name: "expiring", Value: `"old"`, ExpiresAt: &inAMinute})
			before := storedAttrs(t, testDB, scope)

			_, err := testDB.CreateAttrs(t.Context(), scope, tt.items, now.Add(time.Second))
			if !errors.Is(err, attrcache.ErrConflict) {
				t.Fatalf("CreateAttrs error = %v, want ErrConflict", err)
			}
			if after := storedAttrs(t, testDB, scope); !reflect.DeepEqual(after, before) {
				t.Errorf("after a conflict the rows are\n%v\nwant them unchanged\n%v", after, before)
			}
		})
	}
}

func TestCreateAttrsOverExpired(t *testing.T) {
	t0 := attrcache.Now()
	inAMinute, later := t0.Add(time.Minute), t0.Add(2*time.Minute)
	scope := userScope(t)
	old := setAttrs(t, testDB, scope, t0, attrcache.AttrWrite{Name: "a", Value: `"old"`, ExpiresAt: &inAMinute})[0]

	items := []attrcache.AttrWrite{{Name: "a", Value: `"new"`}, {Name: "b", Value: `"new"`}}
	got, err := testDB.CreateAttrs(t.Context(), scope, items, later)
	if err != nil {
		t.Fatalf("CreateAttrs over an expired attribute: %v", err)
	}
	checkAttrs(t, "CreateAttrs", got, created(scope, later, items...))
	if got[0].Version <= old.Version {
		t.Errorf("the re-created attribute has version %d, want more than the expired one's %d", got[0].Version, old.Version)
	}
}

func TestUpdateAttrsSkipsMissing(t *testing.T) {
	t0 := attrcache.Now()
	inAMinute, later := t0.Add(time.Minute), t0.Add(2*time.Minute)
	scope := userScope(t)
	setAttrs(t, testDB, scope, t0,
		attrcache.AttrWrite{Name: "b", Value: `"b"`},
		attrcache.AttrWrite{Name: "expired", Value: `"e"`, ExpiresAt: &inAMinute},
		attrcache.AttrWrite{Name: "a", Value: `"a"`})
	before := storedAttrs(t, testDB, scope)

	items := []attrcache.AttrWrite{
		{Name: "missing", Value: `1`},
		{Name: "b", Value: `2`},
		{Name: "expired", Value: `3`},
		{Name: "a", Value: `4`},
	}
	got, err := testDB.UpdateAttrs(t.Context(), scope, items, later)
	if err != nil {
		t.Fatalf("UpdateAttrs: %v", err)
	}
	checkAttrs(t, "UpdateAttrs", got, []*attrcache.Attr{
		wantAttr(scope, items[1], t0, later, attrcache.NeverExpires),
		wantAttr(scope, items[3], t0, later, attrcache.NeverExpires),
	})
	stored := storedAttrs(t, testDB, scope)
	if _, ok := stored["missing"]; ok {
		t.Error("UpdateAttrs created a missing attribute")
	}
	if !reflect.DeepEqual(stored["expired"], before["expired"]) {
		t.Errorf("the expired row became\n%+v\nwant it untouched\n%+v", stored["expired"], before["expired"])
	}

	t.Run("none exists", func(t *testing.T) {
		got, err := testDB.UpdateAttrs(t.Context(), scope, []attrcache.AttrWrite{{Name: "missing", Value: `1`}}, later)
		if err != nil || len(got) != 0 {
			t.Errorf("UpdateAttrs = %v, %v; want nothing and no error", attrNamesOf(got), err)
		}
	})
}

func TestAttrsAndAttrNamesSeeOnlyLiveAttrs(t *testing.T) {
	t0 := attrcache.Now()
	inAMinute := t0.Add(time.Minute)
	scope := userScope(t)
	setAttrs(t, testDB, scope, t0,
		attrcache.AttrWrite{Name: "forever", Value: `1`},
		attrcache.AttrWrite{Name: "expiring", Value: `2`, ExpiresAt: &inAMinute},
		attrcache.AttrWrite{Name: "other", Value: `3`})
	setAttrs(t, testDB, userScope(t), t0, attrcache.AttrWrite{Name: "another user's", Value: `4`})

	tests := []struct {
		name      string
		at        time.Time
		ask       []string
		wantFound []string
		wantNames []string
	}{
		{"before the expiry", t0, []string{"forever", "expiring", "missing"}, []string{"expiring", "forever"}, []string{"expiring", "forever", "other"}},
		{"one microsecond before the expiry", inAMinute.Add(-time.Microsecond), []string{"expiring"}, []string{"expiring"}, []string{"expiring", "forever", "other"}},
		{"at the expiry", inAMinute, []string{"forever", "expiring"}, []string{"forever"}, []string{"forever", "other"}},
		{"no names", t0, nil, nil, []string{"expiring", "forever", "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, err := testDB.Attrs(t.Context(), scope, tt.ask, tt.at)
			if err != nil {
				t.Fatalf("Attrs: %v", err)
			}
			if got := slices.Sorted(maps.Keys(found)); !slices.Equal(got, tt.wantFound) {
				t.Errorf("Attrs found %v, want %v", got, tt.wantFound)
			}
			names, err := testDB.AttrNames(t.Context(), scope, tt.at)
			if err != nil {
				t.Fatalf("AttrNames: %v", err)
			}
			if slices.Sort(names); !slices.Equal(names, tt.wantNames) {
				t.Errorf("AttrNames = %v, want %v", names, tt.wantNames)
			}
		})
	}
}

func TestDeleteAttrs(t *testing.T) {
	t0 := attrcache.Now()
	inAMinute, later := t0.Add(time.Minute), t0.Add(2*time.Minute)
	scope := userScope(t)
	stored := byName(setAttrs(t, testDB, scope, t0,
		attrcache.AttrWrite{Name: "a", Value: `1`},
		attrcache.AttrWrite{Name: "b", Value: `2`},
		attrcache.AttrWrite{Name: "expired", Value: `3`, ExpiresAt: &inAMinute},
		attrcache.AttrWrite{Name: "kept", Value: `4`}))
	// Bump b's version above the others'.
	if _, err := testDB.UpdateAttrs(t.Context(), scope, []attrcache.AttrWrite{{Name: "b", Value: `5`}}, t0); err != nil {
		t.Fatal(err)
	}
	bumped := storedAttrs(t, testDB, scope)["b"].Version

	tombstone, err := testDB.DeleteAttrs(t.Context(), scope, []string{"b", "missing", "expired", "a"}, later)
	if err != nil {
		t.Fatalf("DeleteAttrs: %v", err)
	}
	if tombstone <= bumped {
		t.Errorf("tombstone %d, want more than the highest deleted version %d", tombstone, bumped)
	}
	if got := slices.Sorted(maps.Keys(storedAttrs(t, testDB, scope))); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("rows left: %v, want [kept] (expired rows are deleted too)", got)
	}
	if kept := storedAttrs(t, testDB, scope)["kept"]; !reflect.DeepEqual(kept, stored["kept"]) {
		t.Errorf("the attribute not named became\n%+v\nwant it untouched\n%+v", kept, stored["kept"])
	}

	t.Run("nothing to delete: the version clock", func(t *testing.T) {
		again, err := testDB.DeleteAttrs(t.Context(), scope, []string{"a", "b"}, later)
		if err != nil {
			t.Fatalf("DeleteAttrs: %v", err)
		}
		if again <= tombstone {
			t.Errorf("tombstone %d, want more than the earlier deletion's %d", again, tombstone)
		}
	})
	t.Run("no names", func(t *testing.T) {
		if got, err := testDB.DeleteAttrs(t.Context(), scope, nil, later); got != 0 || err != nil {
			t.Errorf("DeleteAttrs = %d, %v; want 0, nil", got, err)
		}
	})
}

// store is a store under test and what to call it in a test's name.
type store struct {
	name string
	db   *DB
}

// stores returns testDB and testGroupDB, which queues the writes of one attribute, for tests of
// SetAttrs that must pass the same way with group commit on.
func stores() []store {
	return []store{{"", testDB}, {" with group commit", testGroupDB}}
}

// attrWriter is SetAttrs, CreateAttrs or UpdateAttrs.
type attrWriter func(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error)

func TestAttrVersionsGrowAcrossDeletion(t *testing.T) {
	t0 := attrcache.Now()
	inAMinute, later := t0.Add(time.Minute), t0.Add(2*time.Minute)
	scope := userScope(t)
	steps := []struct {
		name  string
		write attrWriter // nil: DeleteAttrs
		at    time.Time
	}{
		{"create", testDB.CreateAttrs, t0},
		{"set", testDB.SetAttrs, t0},
		{"update", testDB.UpdateAttrs, t0},
		{"delete", nil, t0},
		{"create again", testDB.CreateAttrs, t0},
		{"set over the expired row", testDB.SetAttrs, later},
		{"delete again", nil, later},
		{"set anew", testDB.SetAttrs, later},
	}
	var previous int64
	for _, step := range steps {
		var version int64
		if step.write == nil {
			tombstone, err := testDB.DeleteAttrs(t.Context(), scope, []string{"a"}, step.at)
			if err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			version = tombstone
		} else {
			items := []attrcache.AttrWrite{{Name: "a", Value: `1`, ExpiresAt: &inAMinute}}
			written, err := step.write(t.Context(), scope, items, step.at)
			if err != nil || len(written) != 1 {
				t.Fatalf("%s = %v, %v; want the attribute", step.name, attrNamesOf(written), err)
			}
			version = written[0].Version
		}
		if version <= previous {
			t.Errorf("%s: version %d, want more than the previous %d", step.name, version, previous)
		}
		previous = version
	}
}

func TestSessionAttrs(t *testing.T) {
	t0 := attrcache.Now()
	sessionEnds := t0.Add(time.Hour)
	afterEnd := sessionEnds.Add(time.Minute)
	scope := sessionScope(t, sessionEnds)
	ofUser := attrcache.AttrScope{UserID: scope.UserID}
	other := createSession(t, testDB, newSession(scope.UserID, t0.Add(2*time.Hour)))
	otherScope := attrcache.AttrScope{UserID: scope.UserID, Session: other.Hash}

	// The same name in three scopes of one user: three attributes.
	for value, s := range []attrcache.AttrScope{scope, ofUser, otherScope} {
		setAttrs(t, testDB, s, t0, attrcache.AttrWrite{Name: "a", Value: fmt.Sprint(value)})
	}
	for value, s := range []attrcache.AttrScope{scope, ofUser, otherScope} {
		got, err := testDB.Attrs(t.Context(), s, []string{"a"}, t0)
		if err != nil {
			t.Fatalf("Attrs: %v", err)
		}
		if a := got["a"]; a == nil || a.Value != fmt.Sprint(value) || a.Scope != s {
			t.Errorf("Attrs of %+v = %+v, want value %d in that scope", s, a, value)
		}
	}

	t.Run("invisible once the session has ended", func(t *testing.T) {
		found, err := testDB.Attrs(t.Context(), scope, []string{"a"}, afterEnd)
		if err != nil || len(found) != 0 {
			t.Errorf("Attrs = %v, %v; want nothing", found, err)
		}
		names, err := testDB.AttrNames(t.Context(), scope, afterEnd)
		if err != nil || len(names) != 0 {
			t.Errorf("AttrNames = %v, %v; want nothing", names, err)
		}
		for _, s := range []attrcache.AttrScope{ofUser, otherScope} {
			if names, err := testDB.AttrNames(t.Context(), s, afterEnd); err != nil || len(names) != 1 {
				t.Errorf("AttrNames of %+v = %v, %v; want [a]: another scope is not affected", s, names, err)
			}
		}
	})
	t.Run("writes to an ended session", func(t *testing.T) {
		checkWritesNotFound(t, scope, afterEnd)
	})
	t.Run("gone with their session", func(t *testing.T) {
		if err := testDB.DeleteSession(t.Context(), scope.UserID, scope.Session); err != nil {
			t.Fatalf("DeleteSession: %v", err)
		}
		if stored := storedAttrs(t, testDB, scope); len(stored) != 0 {
			t.Errorf("rows left: %v, want none", slices.Sorted(maps.Keys(stored)))
		}
		checkWritesNotFound(t, scope, t0)
	})
}

// checkWritesNotFound fails the test unless every write to scope at now gives ErrNotFound and
// stores nothing.
func checkWritesNotFound(t *testing.T, scope attrcache.AttrScope, now time.Time) {
	t.Helper()
	before := storedAttrs(t, testDB, scope)
	items := []attrcache.AttrWrite{{Name: "a", Value: `"new"`}, {Name: "b", Value: `"new"`}}
	for name, write := range map[string]attrWriter{
		"SetAttrs":    testDB.SetAttrs,
		"CreateAttrs": testDB.CreateAttrs,
		"UpdateAttrs": testDB.UpdateAttrs,
	} {
		if _, err := write(t.Context(), scope, items, now); !errors.Is(err, attrcache.ErrNotFound) {
			t.Errorf("%s error = %v, want ErrNotFound", name, err)
		}
	}
	if after := storedAttrs(t, testDB, scope); !reflect.DeepEqual(after, before) {
		t.Errorf("rows became %v, want them unchanged %v", after, before)
	}
}

func TestAttrsOfUnknownOwner(t *testing.T) {
	now := attrcache.Now()
	known := createUser(t, testDB, newUser())
	tests := []struct {
		name  string
		scope attrcache.AttrScope
	}{
		{"unknown user", attrcache.AttrScope{UserID: attrcache.NewUserID()}},
		{"unknown session", attrcache.AttrScope{UserID: known.UserID, Session: attrcache.HashSessionID(attrcache.NewSessionID())}},
	}
	items := []attrcache.AttrWrite{{Name: "a", Value: `1`}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, store := range stores() {
				if _, err := store.db.SetAttrs(t.Context(), tt.scope, items, now); !errors.Is(err, attrcache.ErrNotFound) {
					t.Errorf("SetAttrs%s error = %v, want ErrNotFound", store.name, err)
				}
			}
			if _, err := testDB.CreateAttrs(t.Context(), tt.scope, items, now); !errors.Is(err, attrcache.ErrNotFound) {
				t.Errorf("CreateAttrs error = %v, want ErrNotFound", err)
			}
			if found, err := testDB.Attrs(t.Context(), tt.scope, []string{"a"}, now); err != nil || len(found) != 0 {
				t.Errorf("Attrs = %v, %v; want nothing", found, err)
			}
		})
	}
}

func TestAttrNamesAreBytes(t *testing.T) {
	now := attrcache.Now()
	scope := userScope(t)
	names := []string{"a", "a ", "A", "é", "e\u0301", strings.Repeat("é", attrcache.MaxAttrNameBytes/2)}
	items := make([]attrcache.AttrWrite, len(names))
	for i, name := range names {
		items[i] = attrcache.AttrWrite{Name: name, Value: fmt.Sprint(i)}
	}
	got := setAttrs(t, testDB, scope, now, items...)
	checkAttrs(t, "SetAttrs", got, created(scope, now, items...))
	checkReadBack(t, testDB, scope, now, got)

	t.Run("longer than MaxAttrNameBytes", func(t *testing.T) {
		tooLong := strings.Repeat("é", attrcache.MaxAttrNameBytes/2+1) // 192 bytes, 96 characters
		_, err := testDB.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{{Name: tooLong, Value: `1`}}, now)
		if err == nil {
			t.Error("SetAttrs of a 192-byte name: got nil error")
		}
		if _, ok := storedAttrs(t, testDB, scope)[tooLong]; ok {
			t.Error("a 192-byte name was stored")
		}
	})
}

func TestConcurrentWritesInOppositeOrders(t *testing.T) {
	const rounds = 20
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("name-%02d", i)
	}
	itemsOf := func(names []string, value string) []attrcache.AttrWrite {
		items := make([]attrcache.AttrWrite, len(names))
		for i, name := range names {
			items[i] = attrcache.AttrWrite{Name: name, Value: value}
		}
		return items
	}
	reversed := slices.Clone(names)
	slices.Reverse(reversed)

	// run calls each writer rounds times, the writers concurrently, and fails the test on any
	// error.
	run := func(t *testing.T, writers ...func(ctx context.Context) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, len(writers)*rounds)
		for _, write := range writers {
			wg.Go(func() {
				for range rounds {
					if err := write(t.Context()); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("concurrent write: %v", err)
		}
	}

	// set returns a writer of items into scope with SetAttrs.
	set := func(scope attrcache.AttrScope, items []attrcache.AttrWrite) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := testDB.SetAttrs(ctx, scope, items, attrcache.Now())
			return err
		}
	}

	t.Run("SetAttrs", func(t *testing.T) {
		scope := userScope(t)
		run(t, set(scope, itemsOf(names, `"up"`)), set(scope, itemsOf(reversed, `"down"`)))
		if got := len(storedAttrs(t, testDB, scope)); got != len(names) {
			t.Errorf("%d attributes stored, want %d", got, len(names))
		}
	})
	t.Run("one attempt, no deadlock to retry", func(t *testing.T) {
		// The transactions of SetAttrs without inWriteTx's retries: any deadlock fails.
		scope := userScope(t)
		setOnce := func(items []attrcache.AttrWrite) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				return testDB.inTx(ctx, nil, func(tx *sql.Tx) error {
					_, err := testDB.setAttrsByStatementsIn(ctx, tx, rowsOf(scope, items, attrcache.Now()))
					return err
				})
			}
		}
		run(t, setOnce(itemsOf(names, `"up"`)), setOnce(itemsOf(reversed, `"down"`)))
	})
	t.Run("SetAttrs and DeleteAttrs", func(t *testing.T) {
		scope := userScope(t)
		run(t, set(scope, itemsOf(names, `"up"`)), func(ctx context.Context) error {
			_, err := testDB.DeleteAttrs(ctx, scope, reversed, attrcache.Now())
			return err
		})
	})
}

func TestLargeWrites(t *testing.T) {
	now := attrcache.Now()
	// Quotes and backslashes double in the statement when they are escaped.
	value := `"` + strings.Repeat(`\"\\`, 1<<10/4) + `"`
	itemsOf := func(n int, value string) []attrcache.AttrWrite {
		items := make([]attrcache.AttrWrite, n)
		for i := range items {
			items[i] = attrcache.AttrWrite{Name: fmt.Sprintf("attr-%04d", n-i), Value: value}
		}
		return items
	}
	smallPackets := *testDB
	smallPackets.maxPacket = 16 << 10

	tests := []struct {
		name string
		db   *DB
		n    int
	}{
		{"MaxAttrItems of 1 KiB", testDB, attrcache.MaxAttrItems},
		{"split into many statements", &smallPackets, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := itemsOf(tt.n, value)
			t.Run("CreateAttrs", func(t *testing.T) {
				scope := userScope(t)
				got, err := tt.db.CreateAttrs(t.Context(), scope, items, now)
				if err != nil {
					t.Fatalf("CreateAttrs: %v", err)
				}
				checkAttrs(t, "CreateAttrs", got, created(scope, now, items...))
			})
			t.Run("SetAttrs then UpdateAttrs", func(t *testing.T) {
				scope := userScope(t)
				got := setAttrs(t, tt.db, scope, now, items...)
				checkAttrs(t, "SetAttrs", got, created(scope, now, items...))
				checkReadBack(t, tt.db, scope, now, got)

				updates := itemsOf(tt.n, `"updated"`)
				got, err := tt.db.UpdateAttrs(t.Context(), scope, updates, now)
				if err != nil {
					t.Fatalf("UpdateAttrs: %v", err)
				}
				checkAttrs(t, "UpdateAttrs", got, created(scope, now, updates...))
			})
		})
	}
}

func TestSplitBySize(t *testing.T) {
	size := func(n int) int { return n }
	tests := []struct {
		name  string
		sizes []int
		limit int
		want  [][]int
	}{
		{"none", nil, 10, nil},
		{"all fit", []int{3, 3, 4}, 10, [][]int{{3, 3, 4}}},
		{"split where the limit is passed", []int{4, 4, 4, 4, 1}, 10, [][]int{{4, 4}, {4, 4, 1}}},
		{"one too big alone", []int{2, 20, 2}, 10, [][]int{{2}, {20}, {2}}},
		{"a limit below every item", []int{5, 5}, 0, [][]int{{5}, {5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitBySize(tt.sizes, tt.limit, size); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("splitBySize(%v, %d) = %v, want %v", tt.sizes, tt.limit, got, tt.want)
			}
		})
	}
}

func TestNoSessionAttrOutlivesItsSession(t *testing.T) {
	const rounds = 30
	u := createUser(t, testDB, newUser())
	items := []attrcache.AttrWrite{{Name: "a", Value: `1`}, {Name: "b", Value: `2`}}
	for range rounds {
		s := createSession(t, testDB, newSession(u.UserID, attrcache.Now().Add(time.Hour)))
		scope := attrcache.AttrScope{UserID: u.UserID, Session: s.Hash}
		var setErr, deleteErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, setErr = testDB.SetAttrs(t.Context(), scope, items, attrcache.Now()) })
		wg.Go(func() { deleteErr = testDB.DeleteSession(t.Context(), u.UserID, s.Hash) })
		wg.Wait()
		if setErr != nil && !errors.Is(setErr, attrcache.ErrNotFound) {
			t.Errorf("SetAttrs error = %v, want nil or ErrNotFound", setErr)
		}
		if deleteErr != nil {
			t.Errorf("DeleteSession: %v", deleteErr)
		}
		if left := storedAttrs(t, testDB, scope); len(left) != 0 {
			t.Fatalf("attributes %v outlived their session", slices.Sorted(maps.Keys(left)))
		}
	}
}

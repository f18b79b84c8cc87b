package persist

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// openQuotaDB opens a second store of the test database with quota q, and group commit asked
// for, which a quota turns off.
func openQuotaDB(t *testing.T, q Quota) *DB {
	t.Helper()
	db, err := Open(t.Context(), testDSN, testKeys, WithQuota(q),
		WithGroupCommit(GroupCommit{MaxRows: 64, MaxWait: time.Millisecond, Workers: 2}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// sized returns a write of name whose value is a JSON string of exactly n bytes (n >= 2).
func sized(name string, n int) attrcache.AttrWrite {
	return attrcache.AttrWrite{Name: name, Value: `"` + strings.Repeat("q", n-2) + `"`}
}

// valueSizes returns the size of each live value of scope, keyed by name.
func valueSizes(t *testing.T, db *DB, scope attrcache.AttrScope) map[string]int {
	t.Helper()
	names, err := db.AttrNames(t.Context(), scope, attrcache.Now())
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := db.Attrs(t.Context(), scope, names, attrcache.Now())
	if err != nil {
		t.Fatal(err)
	}
	sizes := make(map[string]int, len(attrs))
	for name, a := range attrs {
		sizes[name] = len(a.Value)
	}
	return sizes
}

func TestQuotaLimitsEachWrite(t *testing.T) {
	// At most 3 attributes and 30 bytes of values.
	db := openQuotaDB(t, Quota{MaxAttrs: 3, MaxBytes: 30})
	scope := userScope(t)
	session := attrcache.AttrScope{UserID: scope.UserID,
		Session: createSession(t, testDB, newSession(scope.UserID, attrcache.Now().Add(time.Hour))).Hash}
	past := attrcache.Now().Add(-time.Second)

	type write func(now time.Time) error
	set := func(s attrcache.AttrScope, items ...attrcache.AttrWrite) write {
		return func(now time.Time) error { _, err := db.SetAttrs(t.Context(), s, items, now); return err }
	}
	create := func(items ...attrcache.AttrWrite) write {
		return func(now time.Time) error { _, err := db.CreateAttrs(t.Context(), scope, items, now); return err }
	}
	update := func(items ...attrcache.AttrWrite) write {
		return func(now time.Time) error { _, err := db.UpdateAttrs(t.Context(), scope, items, now); return err }
	}
	del := func(names ...string) write {
		return func(now time.Time) error { _, err := db.DeleteAttrs(t.Context(), scope, names, now); return err }
	}
	expired := func(item attrcache.AttrWrite) attrcache.AttrWrite { item.ExpiresAt = &past; return item }

	// The steps run in order, on one user; want is the user's attributes and sizes afterwards.
	steps := []struct {
		name        string
		write       write
		wantQuota   bool
		wantUser    map[string]int
		wantSession map[string]int
	}{
		{"many up to both limits", set(scope, sized("a", 10), sized("b", 10)), false, map[string]int{"a": 10, "b": 10}, nil},
		{"a session attribute counts", set(session, sized("s", 10)), false, map[string]int{"a": 10, "b": 10}, map[string]int{"s": 10}},
		{"one more attribute", set(scope, sized("c", 2)), true, map[string]int{"a": 10, "b": 10}, map[string]int{"s": 10}},
		{"one more session attribute", set(session, sized("t", 2)), true, map[string]int{"a": 10, "b": 10}, map[string]int{"s": 10}},
		{"create over the limit", create(sized("c", 2)), true, map[string]int{"a": 10, "b": 10}, map[string]int{"s": 10}},
		{"same size at the limit", set(scope, sized("a", 10)), false, map[string]int{"a": 10, "b": 10}, map[string]int{"s": 10}},
		{"a byte more", set(scope, sized("a", 11)), true, map[string]int{"a": 10, "b": 10}, map[string]int{"s": 10}},
		{"update a byte more", update(sized("b", 11)), true, map[string]int{"a": 10, "b": 10}, map[string]int{"s": 10}},
		{"update smaller", update(sized("b", 4)), false, map[string]int{"a": 10, "b": 4}, map[string]int{"s": 10}},
		{"update of a missing name writes nothing", update(sized("zz", 30)), false, map[string]int{"a": 10, "b": 4}, map[string]int{"s": 10}},
		{"many: one fits, one does not, none written", set(scope, sized("a", 2), sized("b", 20)), true, map[string]int{"a": 10, "b": 4}, map[string]int{"s": 10}},
		{"many within the limits", set(scope, sized("a", 2), sized("b", 18)), false, map[string]int{"a": 2, "b": 18}, map[string]int{"s": 10}},
		{"an expired write adds nothing live", set(scope, expired(sized("e", 2))), false, map[string]int{"a": 2, "b": 18}, map[string]int{"s": 10}},
		{"deleting frees room", del("a"), false, map[string]int{"b": 18}, map[string]int{"s": 10}},
		{"the freed room is used", create(sized("c", 2)), false, map[string]int{"b": 18, "c": 2}, map[string]int{"s": 10}},
	}
	for _, step := range steps {
		err := step.write(attrcache.Now())
		if gotQuota := errors.Is(err, attrcache.ErrQuotaExceeded); gotQuota != step.wantQuota || (err != nil && !gotQuota) {
			t.Errorf("%s: error %v, want quota exceeded %v", step.name, err, step.wantQuota)
		}
		if got := valueSizes(t, testDB, scope); fmt.Sprint(got) != fmt.Sprint(step.wantUser) {
			t.Errorf("%s: the user's attributes are %v, want %v", step.name, got, step.wantUser)
		}
		if got := valueSizes(t, testDB, session); fmt.Sprint(got) != fmt.Sprint(step.wantSession) && len(got)+len(step.wantSession) > 0 {
			t.Errorf("%s: the session's attributes are %v, want %v", step.name, got, step.wantSession)
		}
	}
}

func TestQuotaLeftOverLimitMayShrink(t *testing.T) {
	scope := userScope(t)
	setAttrs(t, testDB, scope, attrcache.Now(), sized("a", 20), sized("b", 20), sized("c", 20))
	db := openQuotaDB(t, Quota{MaxAttrs: 2, MaxBytes: 30}) // a limit lowered below what the user holds

	tests := []struct {
		name      string
		items     []attrcache.AttrWrite
		wantQuota bool
	}{
		{"a new attribute", []attrcache.AttrWrite{sized("d", 2)}, true},
		{"a larger value", []attrcache.AttrWrite{sized("a", 21)}, true},
		{"the same size", []attrcache.AttrWrite{sized("a", 20)}, false},
		{"a smaller value", []attrcache.AttrWrite{sized("b", 5)}, false},
	}
	for _, tt := range tests {
		_, err := db.SetAttrs(t.Context(), scope, tt.items, attrcache.Now())
		if got := errors.Is(err, attrcache.ErrQuotaExceeded); got != tt.wantQuota || (err != nil && !got) {
			t.Errorf("%s over the limit: error %v, want quota exceeded %v", tt.name, err, tt.wantQuota)
		}
	}
}

func TestQuotaHoldsUnderConcurrentWrites(t *testing.T) {
	const (
		maxAttrs = 5
		writers  = 24
	)
	tests := []struct {
		name  string
		quota Quota
		write func(db *DB, scope attrcache.AttrScope, i int) error
	}{
		{"attributes, single writes", Quota{MaxAttrs: maxAttrs}, func(db *DB, scope attrcache.AttrScope, i int) error {
			_, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{sized(fmt.Sprintf("n%02d", i), 4)}, attrcache.Now())
			return err
		}},
		{"bytes, many writes", Quota{MaxBytes: maxAttrs * 20}, func(db *DB, scope attrcache.AttrScope, i int) error {
			_, err := db.CreateAttrs(t.Context(), scope, []attrcache.AttrWrite{
				sized(fmt.Sprintf("n%02d-a", i), 10), sized(fmt.Sprintf("n%02d-b", i), 10)}, attrcache.Now())
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openQuotaDB(t, tt.quota)
			scope := userScope(t)
			errs := make([]error, writers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					<-start
					errs[i] = tt.write(db, scope, i)
				})
			}
			close(start)
			wg.Wait()
			succeeded := 0
			for i, err := range errs {
				switch {
				case err == nil:
					succeeded++
				case !errors.Is(err, attrcache.ErrQuotaExceeded):
					t.Errorf("writer %d: %v, want success or quota exceeded", i, err)
				}
			}
			if succeeded != maxAttrs {
				t.Errorf("%d of %d concurrent writes succeeded, want %d (what the quota has room for)", succeeded, writers, maxAttrs)
			}
			var total int
			sizes := valueSizes(t, testDB, scope)
			for _, n := range sizes {
				total += n
			}
			if tt.quota.MaxAttrs > 0 && len(sizes) > tt.quota.MaxAttrs || tt.quota.MaxBytes > 0 && int64(total) > tt.quota.MaxBytes {
				t.Errorf("the user holds %d attributes of %d bytes, over the quota %+v", len(sizes), total, tt.quota)
			}
		})
	}
}

func TestQuotaOfAUserThatDoesNotExist(t *testing.T) {
	db := openQuotaDB(t, Quota{MaxAttrs: 1})
	scope := attrcache.AttrScope{UserID: attrcache.NewUserID()}
	if _, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{sized("a", 2)}, attrcache.Now()); !errors.Is(err, attrcache.ErrNotFound) {
		t.Errorf("SetAttrs of an unknown user: %v, want ErrNotFound", err)
	}
	if got, err := db.UpdateAttrs(t.Context(), scope, []attrcache.AttrWrite{sized("a", 2)}, attrcache.Now()); err != nil || len(got) != 0 {
		t.Errorf("UpdateAttrs of an unknown user: %v, %v; want nothing and no error", got, err)
	}
}

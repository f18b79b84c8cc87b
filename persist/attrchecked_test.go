package persist

import (
	"errors"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// TestCheckedWriteQuotaPerItem checks that a per-item write under a quota keeps, in input order,
// the items that fit with those kept before them, and fails the others alone; an atomic one fails
// whole.
func TestCheckedWriteQuotaPerItem(t *testing.T) {
	db := openQuotaDB(t, Quota{MaxAttrs: 3, MaxBytes: 30})
	scope := userScope(t)
	now := attrcache.Now()
	if _, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{sized("a", 10)}, now); err != nil {
		t.Fatal(err)
	}
	items := []attrcache.AttrWrite{sized("b", 10), sized("c", 15), sized("d", 5), sized("e", 2)}
	if _, err := db.WriteAttrsChecked(t.Context(), scope, attrcache.AttrSet, items, true, now); !errors.Is(err, attrcache.ErrQuotaExceeded) {
		t.Fatalf("atomic write over the quota: %v, want ErrQuotaExceeded", err)
	}
	outcomes, err := db.WriteAttrsChecked(t.Context(), scope, attrcache.AttrSet, items, false, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, wantExceeded := range []bool{false, true, false, true} {
		if got := errors.Is(outcomes[i].Err, attrcache.ErrQuotaExceeded); got != wantExceeded || (!got && outcomes[i].Stored == nil) {
			t.Errorf("item %s: outcome %+v, want quota exceeded %v", items[i].Name, outcomes[i], wantExceeded)
		}
	}
	if got := valueSizes(t, db, scope); len(got) != 3 || got["b"] != 10 || got["d"] != 5 {
		t.Errorf("stored %v, want a, b and d", got)
	}
}

// TestCheckedWriteOnAnEndedSession checks that a checked write into a session that has ended
// fails whole with ErrNotFound, atomic or not, and writes nothing.
func TestCheckedWriteOnAnEndedSession(t *testing.T) {
	scope := userScope(t)
	session := attrcache.AttrScope{UserID: scope.UserID,
		Session: createSession(t, testDB, newSession(scope.UserID, attrcache.Now().Add(time.Second))).Hash}
	later := attrcache.Now().Add(2 * time.Second)
	for _, atomic := range []bool{true, false} {
		_, err := testDB.WriteAttrsChecked(t.Context(), session, attrcache.AttrSet, []attrcache.AttrWrite{sized("a", 4)}, atomic, later)
		if !errors.Is(err, attrcache.ErrNotFound) {
			t.Errorf("atomic %v: %v, want ErrNotFound", atomic, err)
		}
	}
}

package persist

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// TestScanUserAttrs: the scan hands out the user's live attributes, their own first and then
// each live session's, by name, leaving out expired ones, those of an ended session and other
// users'; an error of the callback stops it. AttrKeyIDsOfUser names each sealing key id once.
func TestScanUserAttrs(t *testing.T) {
	db := freshStore(t, "scanuserattrs")
	u := createUser(t, db, newUser())
	other := createUser(t, db, newUser())
	now := attrcache.Now()
	live := createSession(t, db, newSession(u.UserID, now.Add(time.Hour)))
	ended := createSession(t, db, newSession(u.UserID, now.Add(time.Second)))
	user := attrcache.AttrScope{UserID: u.UserID}
	set := func(scope attrcache.AttrScope, items ...attrcache.AttrWrite) {
		t.Helper()
		if _, err := db.SetAttrs(t.Context(), scope, items, now); err != nil {
			t.Fatal(err)
		}
	}
	soon := now.Add(time.Second)
	set(user, attrcache.AttrWrite{Name: "b", Value: `1`}, attrcache.AttrWrite{Name: "a", Value: `2`},
		attrcache.AttrWrite{Name: "expiring", Value: `3`, ExpiresAt: &soon},
		attrcache.AttrWrite{Name: "sealed", Value: sealedAttr(t, testKeys, user, "sealed", `4`), IsEncrypted: true})
	set(attrcache.AttrScope{UserID: u.UserID, Session: live.Hash}, attrcache.AttrWrite{Name: "s", Value: `5`})
	set(attrcache.AttrScope{UserID: u.UserID, Session: ended.Hash}, attrcache.AttrWrite{Name: "gone", Value: `6`})
	set(attrcache.AttrScope{UserID: other.UserID}, attrcache.AttrWrite{Name: "theirs", Value: `7`})

	later := now.Add(2 * time.Second) // "expiring" and the ended session are past
	var got []string
	err := db.ScanUserAttrs(t.Context(), u.UserID, later, func(a *attrcache.Attr) error {
		scope := "user"
		if a.Scope.IsSession() {
			scope = "session"
		}
		got = append(got, scope+"/"+a.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"user/a", "user/b", "user/sealed", "session/s"}; !slices.Equal(got, want) {
		t.Errorf("scanned %v, want %v", got, want)
	}
	stop := errors.New("stop")
	calls := 0
	if err := db.ScanUserAttrs(t.Context(), u.UserID, later, func(*attrcache.Attr) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("a failing callback: %v after %d calls, want its error after 1", err, calls)
	}
	ids, err := db.AttrKeyIDsOfUser(t.Context(), u.UserID)
	if err != nil || !slices.Equal(ids, []string{attrcache.DefaultKeyID}) {
		t.Errorf("AttrKeyIDsOfUser = %v, %v; want [%s]", ids, err, attrcache.DefaultKeyID)
	}
}

// TestScanUserAttrsPages: a scan over many pages hands out every attribute once, in order.
func TestScanUserAttrsPages(t *testing.T) {
	defer func(rows int) { exportPageRows = rows }(exportPageRows)
	exportPageRows = 3
	db := freshStore(t, "scanpages")
	u := createUser(t, db, newUser())
	now := attrcache.Now()
	live := createSession(t, db, newSession(u.UserID, now.Add(time.Hour)))
	var want []string
	for _, scope := range []attrcache.AttrScope{{UserID: u.UserID}, {UserID: u.UserID, Session: live.Hash}} {
		var items []attrcache.AttrWrite
		for i := range 10 {
			name := string(rune('a' + i))
			items = append(items, attrcache.AttrWrite{Name: name, Value: `1`})
			want = append(want, string(scope.Session)+"/"+name)
		}
		if _, err := db.SetAttrs(t.Context(), scope, items, now); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := db.ScanUserAttrs(t.Context(), u.UserID, now, func(a *attrcache.Attr) error {
		got = append(got, string(a.Scope.Session)+"/"+a.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("scanned %v, want %v", got, want)
	}
}

package cache

import (
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// The memo hands back what it decoded for the same key and value, decodes again when either
// differs, and keeps at most maxMemoEntries.
func TestDecodeMemo(t *testing.T) {
	now := attrcache.Now()
	ks := keyspace{prefix: "memo:"}
	newSession := func(userID string, version int64) (sessionKeys, entry) {
		hash := attrcache.HashSessionID("fixed-raw-id")
		raw, err := encodeSession(&attrcache.Session{Hash: hash, UserID: userID, CreationTime: now,
			ExpirationTime: now.Add(time.Hour), Version: version})
		if err != nil {
			t.Fatal(err)
		}
		e, err := parseEntry(raw)
		if err != nil {
			t.Fatal(err)
		}
		return sessionKeys{userID: userID, hash: hash, session: ks.session(userID, hash), principal: ks.principal(userID)}, e
	}
	m := &decodeMemo{}
	k, e := newSession("user-a", 1)
	first, err := m.session(k, e)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := m.session(k, e); again != first {
		t.Fatalf("the same key and value decoded twice")
	}
	if _, e2 := newSession("user-a", 2); mustSession(t, m, k, e2) == first {
		t.Fatalf("a new version of the session was served from the memo")
	}
	// Another user's session whose value is byte for byte the same must not share the entry:
	// the owner and hash come from the key.
	other, eOther := newSession("user-b", 1)
	if eOther.payload != e.payload {
		t.Fatalf("test set-up: the two values differ")
	}
	if got := mustSession(t, m, other, eOther); got == first || got.UserID != "user-b" {
		t.Fatalf("user-b's session came back as %+v", got)
	}

	for i := range maxMemoEntries + 10 {
		m.principals.get(ks.principal(attrcache.NewUserID()), entry{state: entryLive, version: int64(i), payload: `{}`},
			func(entry) (*attrcache.Principal, error) { return &attrcache.Principal{}, nil })
	}
	if n := len(m.principals.entries); n > maxMemoEntries {
		t.Fatalf("the memo holds %d entries, more than %d", n, maxMemoEntries)
	}
}

func mustSession(t *testing.T, m *decodeMemo, k sessionKeys, e entry) *attrcache.Session {
	t.Helper()
	s, err := m.session(k, e)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

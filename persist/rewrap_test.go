package persist

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// sealedAttr returns the stored form of an encrypted attribute value sealed with keys.
func sealedAttr(t *testing.T, keys *attrcache.Keyring, scope attrcache.AttrScope, name, value string) string {
	t.Helper()
	b, err := json.Marshal(keys.Seal(attrcache.PurposeAttr, []byte(value), attrcache.AttrAD(scope, name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keyringOf(t *testing.T, spec string) *attrcache.Keyring {
	t.Helper()
	k, err := attrcache.ParseSecretKeys(spec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSealedCounts: the counts per key id come from the generated key id columns: encrypted
// attribute values by their envelope's key id, a plain value that merely looks like an envelope
// not at all, e-mails and TOTP keys by theirs; a key id the keyring lacks is reported apart.
func TestSealedCounts(t *testing.T) {
	db := freshStore(t, "sealedcounts")
	u := newUser()
	u.Email = ptr("a@example.com")
	u.TOTPKey = "JBSWY3DPEHPK3PXP"
	createUser(t, db, u)
	createUser(t, db, newUser()) // nothing sealed
	scope := attrcache.AttrScope{UserID: u.UserID}
	other := keyringOf(t, "kx:"+attrcache.GenerateKey())
	now := attrcache.Now()
	_, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{
		{Name: "k1-a", Value: sealedAttr(t, testKeys, scope, "k1-a", `1`), IsEncrypted: true},
		{Name: "k1-b", Value: sealedAttr(t, testKeys, scope, "k1-b", `2`), IsEncrypted: true},
		{Name: "kx", Value: sealedAttr(t, other, scope, "kx", `3`), IsEncrypted: true},
		{Name: "looks-sealed", Value: `"ac1.k1.AAAA"`},
		{Name: "plain", Value: `4`},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := db.SealedCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []SealedCount{
		{SealedAttrValue, "k1", 2}, {SealedAttrValue, "kx", 1}, {SealedEmail, "k1", 1}, {SealedTOTPKey, "k1", 1},
	}
	if !slices.Equal(counts, want) {
		t.Errorf("SealedCounts = %v, want %v", counts, want)
	}
	missing, err := db.UnconfiguredSealedCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []SealedCount{{SealedAttrValue, "kx", 1}}; !slices.Equal(missing, want) {
		t.Errorf("UnconfiguredSealedCounts = %v, want %v", missing, want)
	}
}

// TestResealAttrs: a re-seal applies only while the row holds the ciphertext it was made from
// (a write in between wins), bumps the version and changes nothing else; AttrsSealedWith pages
// through one key id's rows in key order.
func TestResealAttrs(t *testing.T) {
	db := freshStore(t, "resealattrs")
	u := createUser(t, db, newUser())
	scope := attrcache.AttrScope{UserID: u.UserID}
	now := attrcache.Now()
	var items []attrcache.AttrWrite
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		items = append(items, attrcache.AttrWrite{Name: name, Value: sealedAttr(t, testKeys, scope, name, `"`+name+`"`), IsEncrypted: true})
	}
	before, err := db.SetAttrs(t.Context(), scope, items, now)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	var after attrcache.AttrKey
	for {
		page, err := db.AttrsSealedWith(t.Context(), "k1", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			seen = append(seen, a.Name)
			after = attrcache.AttrKey{Scope: a.Scope, Name: a.Name}
		}
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(seen, want) {
		t.Fatalf("AttrsSealedWith pages = %v, want %v", seen, want)
	}

	// "b" is rewritten by a client between the read and the re-seal: the client's write stays.
	written, err := db.SetAttrs(t.Context(), scope, []attrcache.AttrWrite{{Name: "b", Value: `"client"`}}, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	newer := keyringOf(t, "k2:"+attrcache.GenerateKey())
	reseals := []attrcache.AttrReseal{
		{Key: attrcache.AttrKey{Scope: scope, Name: "a"}, Sealed: before[0].Value, Resealed: sealedAttr(t, newer, scope, "a", `"a"`)},
		{Key: attrcache.AttrKey{Scope: scope, Name: "b"}, Sealed: before[1].Value, Resealed: sealedAttr(t, newer, scope, "b", `"b"`)},
	}
	stored, err := db.ResealAttrs(t.Context(), reseals)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Name != "a" {
		t.Fatalf("ResealAttrs rewrote %v, want a alone", stored)
	}
	got, want := stored[0], before[0]
	if got.Value != reseals[0].Resealed || got.Version <= want.Version || !got.LastModified.Equal(want.LastModified) ||
		!got.CreationTime.Equal(want.CreationTime) || !got.ExpirationTime.Equal(want.ExpirationTime) || !got.IsEncrypted {
		t.Errorf("re-sealed a = %+v, want %+v with the new value and a higher version alone", got, want)
	}
	attrs, err := db.Attrs(t.Context(), scope, []string{"b"}, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if attrs["b"].Value != `"client"` || attrs["b"].Version != written[0].Version {
		t.Errorf("b = %+v, want the client's write %+v", attrs["b"], written[0])
	}
	counts, err := db.SealedCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []SealedCount{{SealedAttrValue, "k1", 3}, {SealedAttrValue, "k2", 1}}; !slices.Equal(counts, want) {
		t.Errorf("SealedCounts = %v, want %v", counts, want)
	}
}

// TestResealUsers: an e-mail and a TOTP key are re-sealed while they hold the ciphertext the
// re-seal was made from, with the user's version bumped; a stale re-seal changes nothing.
func TestResealUsers(t *testing.T) {
	dsn := freshDSN(t, "resealusers")
	db := openDB(t, dsn)
	if _, err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	u := newUser()
	u.Email = ptr("a@example.com")
	u.TOTPKey = "JBSWY3DPEHPK3PXP"
	createUser(t, db, u)
	found, err := db.UsersSealedWith(t.Context(), SealedEmail, "k1", "", 10)
	if err != nil || len(found) != 1 || found[0].UserID != u.UserID {
		t.Fatalf("UsersSealedWith = %v, %v; want the user's e-mail", found, err)
	}
	both := keyringOf(t, "k2:"+attrcache.GenerateKey()+",k1:"+testKeyB64)
	resealed := both.Seal(attrcache.PurposeEmail, []byte("a@example.com"), []byte(u.UserID))
	stale := attrcache.UserReseal{UserID: u.UserID, Field: SealedEmail, Sealed: "ac1.k1.stale", Resealed: resealed}
	if stored, err := db.ResealUsers(t.Context(), []attrcache.UserReseal{stale}); err != nil || len(stored) != 0 {
		t.Fatalf("a stale re-seal rewrote %v, %v", stored, err)
	}
	fresh := attrcache.UserReseal{UserID: u.UserID, Field: SealedEmail, Sealed: found[0].Sealed, Resealed: resealed}
	withBoth, err := Open(t.Context(), dsn, both)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = withBoth.Close() })
	stored, err := withBoth.ResealUsers(t.Context(), []attrcache.UserReseal{fresh})
	if err != nil || len(stored) != 1 {
		t.Fatalf("ResealUsers = %v, %v; want the user", stored, err)
	}
	if stored[0].Version != u.Version+1 || *stored[0].Email != "a@example.com" {
		t.Errorf("re-sealed user version %d e-mail %v, want version %d and the same e-mail", stored[0].Version, stored[0].Email, u.Version+1)
	}
	counts, err := db.SealedCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []SealedCount{{SealedEmail, "k2", 1}, {SealedTOTPKey, "k1", 1}}; !slices.Equal(counts, want) {
		t.Errorf("SealedCounts = %v, want %v", counts, want)
	}
}

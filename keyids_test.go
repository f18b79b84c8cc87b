package attrcache_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/attrcache/attrcache"
)

// TestKeyNotConfigured: an envelope of a key id the keyring lacks opens to a
// *KeyNotConfiguredError naming it (still ErrUndecryptable); a malformed one to
// ErrUndecryptable alone; EnvelopeKeyID reads the id without opening anything.
func TestKeyNotConfigured(t *testing.T) {
	old, err := attrcache.ParseSecretKeys("k1:" + attrcache.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	newer, err := attrcache.ParseSecretKeys("k2:" + attrcache.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed := old.Seal(attrcache.PurposeAttr, []byte("v"), nil)
	_, err = newer.Open(attrcache.PurposeAttr, sealed, nil)
	missing, ok := errors.AsType[*attrcache.KeyNotConfiguredError](err)
	if !ok || missing.KeyID != "k1" || !errors.Is(err, attrcache.ErrUndecryptable) {
		t.Errorf("Open of a k1 envelope with k2 alone: %v, want KeyNotConfiguredError{k1} that is ErrUndecryptable", err)
	}
	for _, bad := range []string{"ac1.k1", "ac1.bad id!.AAAA", "plain"} {
		_, err := newer.Open(attrcache.PurposeAttr, bad, nil)
		if _, ok := errors.AsType[*attrcache.KeyNotConfiguredError](err); ok || !errors.Is(err, attrcache.ErrUndecryptable) {
			t.Errorf("Open(%q) = %v, want ErrUndecryptable alone", bad, err)
		}
	}
	for _, tc := range []struct {
		in     string
		id     string
		wantOK bool
	}{
		{sealed, "k1", true},
		{"ac1.k-2_x.AAAA", "k-2_x", true},
		{"ac1.k1", "", false},
		{"ac1.bad id.AAAA", "", false},
		{"k1.AAAA", "", false},
	} {
		if id, ok := attrcache.EnvelopeKeyID(tc.in); id != tc.id || ok != tc.wantOK {
			t.Errorf("EnvelopeKeyID(%q) = %q, %v; want %q, %v", tc.in, id, ok, tc.id, tc.wantOK)
		}
	}
	if got := newer.KeyIDs(); !slices.Equal(got, []string{"k2"}) || !newer.Has("k2") || newer.Has("k1") {
		t.Errorf("KeyIDs = %v, Has(k2) %v, Has(k1) %v", got, newer.Has("k2"), newer.Has("k1"))
	}
	e := attrcache.KeyMissing("k1")
	if e.Kind != attrcache.KindUnavailable || e.Code != attrcache.CodeInternalError {
		t.Errorf("KeyMissing = %+v, want unavailable (503) E008004", e)
	}
}

package sso

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

var cheapHash = HashParams{Time: 1, MemoryKiB: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestHashPassword(t *testing.T) {
	encoded, err := hashPassword(cheapHash, "s3cret passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=64,t=1,p=1$"; !strings.HasPrefix(encoded, want) {
		t.Errorf("hash = %q, want the prefix %q", encoded, want)
	}
	if strings.Contains(encoded, "s3cret") {
		t.Error("the hash holds the password")
	}
	again, _ := hashPassword(cheapHash, "s3cret passphrase")
	if again == encoded {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, tt := range []struct {
		password string
		want     bool
	}{
		{"s3cret passphrase", true},
		{"s3cret passphrasE", false},
		{"", false},
	} {
		if got, err := verifyPassword(encoded, tt.password); err != nil || got != tt.want {
			t.Errorf("verifyPassword(%q) = %v, %v; want %v, nil", tt.password, got, err, tt.want)
		}
	}
}

func TestVerifyPasswordUsesStoredParameters(t *testing.T) {
	other := HashParams{Time: 2, MemoryKiB: 128, Threads: 2, KeyLen: 16, SaltLen: 8}
	encoded, err := hashPassword(other, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := verifyPassword(encoded, "pw"); err != nil || !ok {
		t.Errorf("verifyPassword = %v, %v; want true, nil", ok, err)
	}
}

func TestVerifyPasswordRejectsMalformedHashes(t *testing.T) {
	for _, encoded := range []string{
		"",
		"plain text",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=1,p=1$$aGFzaGhhc2g",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$not*base64",
	} {
		if _, err := verifyPassword(encoded, "pw"); err != errBadHash {
			t.Errorf("verifyPassword(%q) error = %v, want errBadHash", encoded, err)
		}
	}
}

func TestRandomToken(t *testing.T) {
	a, b := randomToken(), randomToken()
	if len(a) != 32 || a == b {
		t.Errorf("randomToken = %q, %q; want two different 32-character tokens", a, b)
	}
}

// Hashes beyond the slots wait their turn and all finish: every hash and verification gives its
// slot back, so none of them can be left waiting for good.
func TestHashSlotsAreGivenBack(t *testing.T) {
	var wg sync.WaitGroup
	errs := make([]error, 4*cap(hashSlots))
	for i := range errs {
		wg.Go(func() {
			encoded, err := hashPassword(cheapHash, "secret")
			if err == nil {
				var ok bool
				if ok, err = verifyPassword(encoded, "secret"); err == nil && !ok {
					err = errors.New("the password does not verify against its own hash")
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("hash %d: %v", i, err)
		}
	}
	if n := len(hashSlots); n != 0 {
		t.Fatalf("%d hash slots still held after every hash finished", n)
	}
}

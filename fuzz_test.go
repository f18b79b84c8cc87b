package attrcache_test

import (
	"bytes"
	"encoding/base32"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/attrcache/attrcache"
)

// The fuzz targets below run over their seeds and the corpus kept in testdata/fuzz/<FuzzName>/
// in every `go test`; `make fuzz` runs them with random inputs for a while.

// fuzzKey is the fixed secret key of the fuzz keyring, so that the envelopes and USTs kept in
// testdata/fuzz/ open in every run. It is a test key and protects nothing.
const fuzzKey = "YXR0cmNhY2hlIGZ1enoga2V5OiBub3QgYSBzZWNyZXQ="

// fuzzKeyring returns the keyring of fuzzKey.
func fuzzKeyring(f *testing.F) *attrcache.Keyring {
	f.Helper()
	k, err := attrcache.ParseSecretKey(fuzzKey)
	if err != nil {
		f.Fatalf("ParseSecretKey(fuzzKey): %v", err)
	}
	return k
}

// fuzzSessions are the only sessions whose USTs the UST corpus holds: the fuzzer cannot forge an
// envelope, so any UST that ParseUST accepts must carry one of these pairs.
var fuzzSessions = []struct{ sessionID, userID string }{
	{"zust" + strings.Repeat("0", 26), "zusr" + strings.Repeat("0", 26)},
	{"zust7" + strings.Repeat("z", 25), "zusr7" + strings.Repeat("z", 25)},
	{"zust6fh6fdgd4997ksjkpx7qnk659q", "zusr6fh6fdgd4997ksjkpx7qnk659q"},
}

// FuzzParseUST checks that ParseUST never panics, accepts only USTs that NewUST made (under the
// keyring's key, for the sessions issued), and that NewUST and ParseUST round-trip every pair of
// ids NewUST accepts.
func FuzzParseUST(f *testing.F) {
	k := fuzzKeyring(f)
	issued := make(map[[2]string]bool)
	for _, s := range fuzzSessions {
		ust, err := attrcache.NewUST(k, s.sessionID, s.userID)
		if err != nil {
			f.Fatalf("NewUST(%s, %s): %v", s.sessionID, s.userID, err)
		}
		issued[[2]string{s.sessionID, s.userID}] = true
		f.Add(ust, s.sessionID, s.userID)
		f.Add(ust[:len(ust)-1], s.sessionID, "zusr")
		f.Add(ust+"A", strings.ToUpper(s.sessionID), s.userID)
	}
	other := attrcache.NewUserID()
	f.Add("", "", "")
	f.Add("gAAAAABk", attrcache.NewSessionID(), other)
	f.Add("ac1.k1.", "zust", "zusr")
	f.Add("ac1.k1."+strings.Repeat("A", 80), "zust8"+strings.Repeat("z", 25), other)
	f.Add(k.Seal(attrcache.PurposeAttr, make([]byte, 32), []byte("ust")), "zustoooooooooooooooooooooooooo", other)

	f.Fuzz(func(t *testing.T, ust, sessionID, userID string) {
		gotSID, gotUID, err := attrcache.ParseUST(k, ust)
		switch {
		case err != nil && !errors.Is(err, attrcache.ErrBadUST):
			t.Fatalf("ParseUST(%q): error %v, want ErrBadUST", ust, err)
		case err == nil && !issued[[2]string{gotSID, gotUID}]:
			t.Fatalf("ParseUST(%q) = %q, %q: a session that was never issued", ust, gotSID, gotUID)
		case err == nil:
			wantNoOtherSpelling(t, k, ust)
		}

		made, err := attrcache.NewUST(k, sessionID, userID)
		if err != nil {
			return
		}
		gotSID, gotUID, err = attrcache.ParseUST(k, made)
		if err != nil || gotSID != sessionID || gotUID != userID {
			t.Fatalf("ParseUST(NewUST(%q, %q)) = %q, %q, %v; want the same ids back", sessionID, userID, gotSID, gotUID, err)
		}
		if !attrcache.ValidUserID(userID) {
			t.Fatalf("NewUST accepted user id %q, which ValidUserID refuses", userID)
		}
	})
}

// wantNoOtherSpelling fails the test if ust, a UST that ParseUST accepts, is still accepted with
// any one of its characters changed: each session has one spelling per sealing.
func wantNoOtherSpelling(t *testing.T, k *attrcache.Keyring, ust string) {
	t.Helper()
	for i := range len(ust) {
		for _, delta := range []byte{1, 2, 4, 8, 16, 32} {
			changed := ust[:i] + string(ust[i]^delta) + ust[i+1:]
			if _, _, err := attrcache.ParseUST(k, changed); err == nil {
				t.Fatalf("ParseUST accepted %q, %q with byte %d changed", changed, ust, i)
			}
		}
	}
}

// FuzzKeyringOpen checks that Open never panics on any envelope, that what Seal makes opens with
// the same purpose and associated data and with nothing else, and that changing any one byte
// of a sealed envelope, or inserting a line break, makes it fail to open.
func FuzzKeyringOpen(f *testing.F) {
	k := fuzzKeyring(f)
	// The fuzzer cannot forge an envelope, so the only one that opens is one sealed for this
	// plaintext and associated data, here or in the kept corpus.
	const sealedPlaintext, sealedAD = `"value"`, "zusr1/name"
	sealed := k.Seal(attrcache.PurposeAttr, []byte(sealedPlaintext), []byte(sealedAD))
	f.Add([]byte(sealedPlaintext), []byte(sealedAD), sealed, uint(len(sealed)-1), byte(1))
	f.Add([]byte{}, []byte{}, "ac1.k1.", uint(0), byte(0x80))
	f.Add([]byte("a@example.com"), []byte(nil), "ac1.k9.AAAA", uint(5), byte('k'^'z'))
	f.Add(bytes.Repeat([]byte{0xff}, 300), []byte(sealedAD), sealed[:len(sealed)-1]+"\n"+sealed[len(sealed)-1:], uint(7), byte(2))

	f.Fuzz(func(t *testing.T, plaintext, ad []byte, envelope string, pos uint, mask byte) {
		if got, err := k.Open(attrcache.PurposeAttr, envelope, ad); err != nil && !errors.Is(err, attrcache.ErrUndecryptable) {
			t.Fatalf("Open(%q): error %v, want ErrUndecryptable", envelope, err)
		} else if err == nil && (string(got) != sealedPlaintext || string(ad) != sealedAD) {
			t.Fatalf("Open(%q, ad %q) = %q: only what was sealed under the fuzz key opens", envelope, ad, got)
		} else if i := int(pos % uint(len(envelope)+1)); err == nil {
			if _, err := k.Open(attrcache.PurposeAttr, envelope[:i]+"\n"+envelope[i:], ad); err == nil {
				t.Fatalf("Open(%q) still opened with a line break inserted at %d", envelope, i)
			}
		}

		env := k.Seal(attrcache.PurposeAttr, plaintext, ad)
		if got, err := k.Open(attrcache.PurposeAttr, env, ad); err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("Open(Seal(%q)) = %q, %v; want the plaintext back", plaintext, got, err)
		}
		if _, err := k.Open(attrcache.PurposeEmail, env, ad); err == nil {
			t.Fatal("an envelope sealed for attributes opened as an e-mail")
		}
		if _, err := k.Open(attrcache.PurposeAttr, env, append(bytes.Clone(ad), 0)); err == nil {
			t.Fatal("an envelope opened with other associated data")
		}
		if mask == 0 {
			mask = 1
		}
		tampered := []byte(env)
		i := int(pos % uint(len(tampered)))
		tampered[i] ^= mask
		if got, err := k.Open(attrcache.PurposeAttr, string(tampered), ad); err == nil {
			t.Fatalf("the envelope with byte %d changed from %q to %q still opened, to %q", i, env[i], tampered[i], got)
		}
	})
}

// FuzzDecodeTOTPKey checks that DecodeTOTPKey never panics, ignores case and padding, and that a
// key it accepts is a key: it round-trips through base32 and its current code verifies.
func FuzzDecodeTOTPKey(f *testing.F) {
	for _, seed := range []string{
		"JBSWY3DPEHPK3PXP", "jbswy3dpehpk3pxp", "JBSW Y3DP EHPK 3PXP", "GEZDGNBVGY3TQOJQ=====",
		"", "=", "        ", "A", "AB", "ABCDEFGH1", "JBSWY3DPEHPK3PX!", attrcache.NewTOTPKey(),
	} {
		f.Add(seed)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, key string) {
		decoded, err := attrcache.DecodeTOTPKey(key)
		if err != nil {
			if !errors.Is(err, attrcache.ErrBadTOTPKey) {
				t.Fatalf("DecodeTOTPKey(%q): error %v, want ErrBadTOTPKey", key, err)
			}
			return
		}
		if len(decoded) == 0 {
			t.Fatalf("DecodeTOTPKey(%q) accepted an empty key", key)
		}
		for _, variant := range []string{strings.ToLower(key), strings.ToUpper(key), base32.StdEncoding.EncodeToString(decoded)} {
			if got, err := attrcache.DecodeTOTPKey(variant); err != nil || !bytes.Equal(got, decoded) {
				t.Fatalf("DecodeTOTPKey(%q) = %x, %v; want %x as for %q", variant, got, err, decoded, key)
			}
		}
		if code := attrcache.TOTPCode(decoded, at); !attrcache.VerifyTOTP(decoded, code, at) {
			t.Fatalf("key %q: its own code %s does not verify", key, code)
		}
	})
}

// FuzzParseTime checks that ParseTime never panics and that every time it accepts is UTC, to
// the microsecond, and within what FormatTime writes and ParseTime reads back unchanged.
func FuzzParseTime(f *testing.F) {
	for _, seed := range []string{
		"2026-01-02T03:04:05", "2026-01-02T03:04:05.123456", "2026-01-02 03:04:05.1234567+02:00",
		"2026-01-02T03:04:05Z", "2026-01-02T03:04", "2026-01-02", "9999-12-31T00:00:00",
		"9999-12-31T23:59:59-01:00", "0000-01-01T00:30:00+01:00", "", "yesterday", "2026-13-01",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := attrcache.ParseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC || got.Nanosecond()%int(time.Microsecond) != 0 {
			t.Fatalf("ParseTime(%q) = %v: want UTC to the microsecond", s, got)
		}
		formatted := attrcache.FormatTime(got)
		if back, err := attrcache.ParseTime(formatted); err != nil || !back.Equal(got) {
			t.Fatalf("ParseTime(%q) = %v, formatted %q, read back as %v, %v", s, got, formatted, back, err)
		}
	})
}

// FuzzCheckUsername checks that CheckUsername never panics, refuses only with the username codes,
// accepts only non-empty UTF-8 of at most MaxUsernameChars characters with no white space at
// either end and no control, format or separator character, and that a username it accepts has
// one spelling: padding it, or adding an invisible character, gives one it refuses.
func FuzzCheckUsername(f *testing.F) {
	for _, seed := range []string{
		"alice", "alice ", " alice", "\u200balice", "ali\u200dce", "\ufeff", "Alice Smith", "élodie", "e\u0301",
		"", " ", "\t", "a\x00b", "a\xffb", "\u2028", strings.Repeat("é", attrcache.MaxUsernameChars),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, username string) {
		err := attrcache.CheckUsername(username)
		if err != nil {
			e := attrcache.AsError(err)
			switch {
			case e.Kind != attrcache.KindDenied:
				t.Fatalf("CheckUsername(%q): kind %v, want denied", username, e.Kind)
			case e.Code != attrcache.CodeUsernameInvalid && e.Code != attrcache.CodeUsernameTooLong && e.Code != attrcache.CodeUsernameWhitespace:
				t.Fatalf("CheckUsername(%q): code %s, want a username code", username, e.Code)
			}
			return
		}
		if username == "" || !utf8.ValidString(username) || utf8.RuneCountInString(username) > attrcache.MaxUsernameChars {
			t.Fatalf("CheckUsername accepted %q: empty, not UTF-8 or too long", username)
		}
		if strings.TrimFunc(username, unicode.IsSpace) != username {
			t.Fatalf("CheckUsername accepted %q, which starts or ends with white space", username)
		}
		if i := strings.IndexFunc(username, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) }); i >= 0 {
			t.Fatalf("CheckUsername accepted %q, which holds a control, format or separator character at byte %d", username, i)
		}
		for _, respelt := range []string{username + " ", " " + username, username + "\u200b", "\ufeff" + username} {
			if attrcache.CheckUsername(respelt) == nil {
				t.Fatalf("CheckUsername accepts both %q and %q", username, respelt)
			}
		}
	})
}

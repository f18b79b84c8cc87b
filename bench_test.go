package attrcache_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
)

// benchKeyring returns a keyring of one fixed key; benchmarks need no secrecy, only a valid key.
func benchKeyring(b *testing.B) *attrcache.Keyring {
	b.Helper()
	k, err := attrcache.NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatalf("NewKeyring: %v", err)
	}
	return k
}

// benchValueSizes are the plaintext sizes the Seal and Open benchmarks measure: a typical
// attribute value and a large one.
var benchValueSizes = []int{100, 4 << 10}

// benchAD is the associated data the Seal and Open benchmarks bind an attribute value to.
var benchAD = attrcache.AttrAD(attrcache.AttrScope{UserID: attrcache.NewUserID()}, "profile")

func BenchmarkKeyringSeal(b *testing.B) {
	k := benchKeyring(b)
	for _, size := range benchValueSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			plaintext := bytes.Repeat([]byte{'a'}, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				k.Seal(attrcache.PurposeAttr, plaintext, benchAD)
			}
		})
	}
}

func BenchmarkKeyringOpen(b *testing.B) {
	k := benchKeyring(b)
	for _, size := range benchValueSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			envelope := k.Seal(attrcache.PurposeAttr, bytes.Repeat([]byte{'a'}, size), benchAD)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := k.Open(attrcache.PurposeAttr, envelope, benchAD); err != nil {
					b.Fatalf("Open: %v", err)
				}
			}
		})
	}
}

func BenchmarkNewUST(b *testing.B) {
	k := benchKeyring(b)
	sessionID, userID := attrcache.NewSessionID(), attrcache.NewUserID()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := attrcache.NewUST(k, sessionID, userID); err != nil {
			b.Fatalf("NewUST: %v", err)
		}
	}
}

func BenchmarkParseUST(b *testing.B) {
	k := benchKeyring(b)
	ust, err := attrcache.NewUST(k, attrcache.NewSessionID(), attrcache.NewUserID())
	if err != nil {
		b.Fatalf("NewUST: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := attrcache.ParseUST(k, ust); err != nil {
			b.Fatalf("ParseUST: %v", err)
		}
	}
}

func BenchmarkFormatTime(b *testing.B) {
	t := attrcache.Now()
	b.ReportAllocs()
	for b.Loop() {
		attrcache.FormatTime(t)
	}
}

func BenchmarkValidAttrName(b *testing.B) {
	for _, tc := range []struct{ desc, name string }{
		{"short", "profile"},
		{"longest", strings.Repeat("n", attrcache.MaxAttrNameBytes)},
	} {
		b.Run(tc.desc, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !attrcache.ValidAttrName(tc.name) {
					b.Fatalf("ValidAttrName(%q) = false, want true", tc.name)
				}
			}
		})
	}
}

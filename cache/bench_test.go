package cache

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// benchNameCounts are the numbers of attribute names the key benchmarks build keys for: one
// attribute, and a get_many of a hundred.
var benchNameCounts = []int{1, 100}

// benchScopes are a user's scope and one of its sessions', whose keys differ in shape.
var benchScopes = []struct {
	desc  string
	scope attrcache.AttrScope
}{
	{"user", attrcache.AttrScope{UserID: attrcache.NewUserID()}},
	{"session", attrcache.AttrScope{
		UserID:  attrcache.NewUserID(),
		Session: attrcache.HashSessionID(attrcache.NewSessionID()),
	}},
}

func BenchmarkAttrKeys(b *testing.B) {
	ks := keyspace{prefix: "attrcache:"}
	for _, sc := range benchScopes {
		for _, n := range benchNameCounts {
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("attribute-%03d", i)
			}
			b.Run(fmt.Sprintf("%s/%d", sc.desc, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					ks.attrs(sc.scope, names)
				}
			})
		}
	}
}

// benchAttr returns a live attribute of scope whose value is the JSON text of a string of
// valueBytes characters.
func benchAttr(scope attrcache.AttrScope, valueBytes int) *attrcache.Attr {
	now := attrcache.Now()
	return &attrcache.Attr{
		Scope:          scope,
		Name:           "profile",
		Value:          `"` + strings.Repeat("v", valueBytes) + `"`,
		CreationTime:   now,
		LastModified:   now,
		ExpirationTime: now.Add(time.Hour),
		Version:        now.UnixMicro(),
	}
}

// benchValueSizes are the attribute value sizes the codec benchmarks measure.
var benchValueSizes = []int{100, 4 << 10}

func BenchmarkEncodeAttr(b *testing.B) {
	for _, size := range benchValueSizes {
		attr := benchAttr(benchScopes[0].scope, size)
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeAttr(attr); err != nil {
					b.Fatalf("encodeAttr: %v", err)
				}
			}
		})
	}
}

// BenchmarkDecodeAttr measures reading an attribute back as MGET returns it: parsing the entry,
// then decoding the attribute.
func BenchmarkDecodeAttr(b *testing.B) {
	for _, size := range benchValueSizes {
		attr := benchAttr(benchScopes[0].scope, size)
		cached, err := encodeAttr(attr)
		if err != nil {
			b.Fatalf("encodeAttr: %v", err)
		}
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e, err := parseEntry(cached)
				if err != nil {
					b.Fatalf("parseEntry: %v", err)
				}
				got, err := decodeAttr(attr.Scope, attr.Name, e)
				if err != nil {
					b.Fatalf("decodeAttr: %v", err)
				}
				if got.Version != attr.Version {
					b.Fatalf("decoded version = %d, want %d", got.Version, attr.Version)
				}
			}
		})
	}
}

// BenchmarkParseCachedAttrs measures what the one-round-trip read does with what MGET returned:
// the caller's session and principal, then one attribute of theirs; decoded afresh, and as the
// read does it, with the session and principal decoded before.
func BenchmarkParseCachedAttrs(b *testing.B) {
	scope := benchScopes[0].scope
	now := attrcache.Now()
	sess := &attrcache.Session{
		Hash: attrcache.HashSessionID(attrcache.NewSessionID()), UserID: scope.UserID,
		CreationTime: now, ExpirationTime: now.Add(time.Hour), RemoteAddr: "127.0.0.1",
		UserAgent: "bench/1.0", AuthType: "default", Version: 1,
		StateChanges: []attrcache.SessionStateChange{{RemoteAddr: "127.0.0.1", UserAgent: "bench/1.0", TimestampUTC: "2026-11-23T21:00:00", CtxSource: "login", Idx: 0}},
	}
	p := &attrcache.Principal{UserID: scope.UserID, Username: "bench", IsActive: true,
		ApprovalStatus: attrcache.ApprovalApproved, SignUpStatus: attrcache.SignUpFinal,
		PasswordExpiry: now.Add(24 * time.Hour), Version: 1}
	rawSession, err := encodeSession(sess)
	if err != nil {
		b.Fatal(err)
	}
	rawPrincipal, err := encodePrincipal(p)
	if err != nil {
		b.Fatal(err)
	}
	rawAttr, err := encodeAttr(benchAttr(scope, 100))
	if err != nil {
		b.Fatal(err)
	}
	ks := keyspace{prefix: "attrcache:"}
	caller := sessionKeys{userID: scope.UserID, hash: sess.Hash, session: ks.session(scope.UserID, sess.Hash), principal: ks.principal(scope.UserID)}
	q := attrcache.CachedAttrQuery{CallerID: scope.UserID, Caller: sess.Hash, Scope: scope, Names: []string{"profile"}, Now: now}
	values := []any{rawSession, rawPrincipal, rawAttr}
	for _, bc := range []struct {
		desc string
		memo *decodeMemo
	}{{"decoded", nil}, {"memoized", &decodeMemo{}}} {
		b.Run(bc.desc, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok, err := parseCachedAttrs(q, caller, sessionKeys{}, values, bc.memo); !ok || err != nil {
					b.Fatalf("parseCachedAttrs: %v, %v", ok, err)
				}
			}
		})
	}
}

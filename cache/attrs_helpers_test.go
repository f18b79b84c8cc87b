package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/attrcache/attrcache"
)

// newAttrTestStore returns an AttrStore, and the Store it shares, on rdb in front of a counting
// wrapper of the MySQL store.
func newAttrTestStore(t *testing.T, rdb redis.UniversalClient) (*AttrStore, *countingStore) {
	t.Helper()
	return newAttrTestStoreWith(t, rdb, Options{})
}

// newAttrTestStoreWith is newAttrTestStore with opts, under the package's prefix.
func newAttrTestStoreWith(t *testing.T, rdb redis.UniversalClient, opts Options) (*AttrStore, *countingStore) {
	t.Helper()
	s, inner := newTestStoreWith(t, rdb, opts)
	return NewAttrStore(s, inner), inner
}

// scopeKinds are the two kinds of attribute scope, for tests that cover both.
var scopeKinds = []struct {
	name    string
	session bool
}{{"user", false}, {"session", true}}

// newScope returns the attribute scope of a new user, or of a new session of a new user lasting
// an hour. A session and its owner are cached in Redis (as every UST call leaves them), and the
// inner call counts reset.
func newScope(t *testing.T, a *AttrStore, inner *countingStore, session bool) attrcache.AttrScope {
	t.Helper()
	u := newUser(t)
	scope := attrcache.AttrScope{UserID: u.UserID}
	if session {
		sess := newSession(t, u.UserID, time.Hour)
		warm(t, a.s, inner, sess)
		scope.Session = sess.Hash
	}
	inner.reset()
	return scope
}

// jsonString returns s as a JSON string: an attribute value.
func jsonString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// item returns the write of name with the JSON string value, never expiring unless expiresAt
// says.
func item(name, value string, expiresAt ...time.Time) attrcache.AttrWrite {
	w := attrcache.AttrWrite{Name: name, Value: jsonString(value)}
	if len(expiresAt) > 0 {
		w.ExpiresAt = &expiresAt[0]
	}
	return w
}

// mysqlAttrs returns the named attributes of scope that MySQL holds live now.
func mysqlAttrs(t *testing.T, scope attrcache.AttrScope, names ...string) map[string]*attrcache.Attr {
	t.Helper()
	attrs, err := testDB.Attrs(context.Background(), scope, names, attrcache.Now())
	if err != nil {
		t.Fatalf("reading MySQL: %v", err)
	}
	return attrs
}

// cachedAttrs returns the attributes called names through a.
func cachedAttrs(t *testing.T, a *AttrStore, scope attrcache.AttrScope, names ...string) map[string]*attrcache.Attr {
	t.Helper()
	attrs, err := a.Attrs(context.Background(), scope, names, attrcache.Now())
	if err != nil {
		t.Fatalf("Attrs(%q): %v", names, err)
	}
	return attrs
}

// cachedEntry returns what Redis holds at the key of scope's attribute name.
func cachedEntry(t *testing.T, a *AttrStore, scope attrcache.AttrScope, name string) entry {
	t.Helper()
	key := a.s.keys.attrPrefix(scope) + name
	raw, ok := rawValue(t, a.s.rdb, key)
	if !ok {
		return entry{state: entryNoKey}
	}
	e, err := parseEntry(raw)
	if err != nil {
		t.Fatalf("%s holds %q: %v", key, raw, err)
	}
	return e
}

// expireTimeMillis returns PEXPIRETIME of key: Unix milliseconds, -1 without expiry, -2 without
// the key.
func expireTimeMillis(t *testing.T, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	ms, err := rdb.Do(context.Background(), "PEXPIRETIME", key).Int64()
	if err != nil {
		t.Fatalf("PEXPIRETIME %s: %v", key, err)
	}
	return ms
}

// expireTimeMatches reports whether got, a key's PEXPIRETIME, is right for an attribute that
// expires at expiresAt: exactly then, or, when that is past the default max TTL (never, say),
// within a minute of now plus the max TTL. want is the expected PEXPIRETIME.
func expireTimeMatches(got int64, expiresAt time.Time) (want int64, ok bool) {
	capped := time.Now().Add(DefaultMaxTTL)
	if expiresAt.Before(capped.Add(-time.Minute)) {
		return expiresAt.UnixMilli(), got == expiresAt.UnixMilli()
	}
	want = capped.UnixMilli()
	return want, got <= want && got > want-time.Minute.Milliseconds()
}

// checkRedisMatchesMySQL fails the test if a key of scope's attributes called names holds
// anything but what MySQL holds: the same attribute, version and all, expiring natively when it
// does, or a mark of absence (tombstone or absent marker) for an attribute MySQL does not have. A
// missing key is always right.
func checkRedisMatchesMySQL(t *testing.T, a *AttrStore, scope attrcache.AttrScope, names ...string) {
	t.Helper()
	want := mysqlAttrs(t, scope, names...)
	for _, name := range names {
		key := a.s.keys.attrPrefix(scope) + name
		e := cachedEntry(t, a, scope, name)
		switch e.state {
		case entryLive:
			got, err := decodeAttr(scope, name, e)
			if err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			if want[name] == nil {
				t.Errorf("Redis holds %q (version %d), MySQL has no such attribute", name, got.Version)
				continue
			}
			if !reflect.DeepEqual(got, want[name]) {
				t.Errorf("Redis holds %q as %+v, MySQL as %+v", name, got, want[name])
			}
			expireTime := expireTimeMillis(t, a.s.rdb, key)
			if wantTime, ok := expireTimeMatches(expireTime, want[name].ExpirationTime); !ok {
				t.Errorf("key of %q: PEXPIRETIME = %d, want %d", name, expireTime, wantTime)
			}
		case entryTombstone, entryAbsent:
			if want[name] != nil {
				t.Errorf("Redis says %q does not exist, MySQL holds version %d", name, want[name].Version)
			}
		}
	}
}

// checkReadsMatchMySQL fails the test unless reading names through a gives what MySQL holds.
func checkReadsMatchMySQL(t *testing.T, a *AttrStore, scope attrcache.AttrScope, names ...string) {
	t.Helper()
	got := cachedAttrs(t, a, scope, names...)
	if want := mysqlAttrs(t, scope, names...); !reflect.DeepEqual(got, want) {
		t.Errorf("Attrs(%q) = %v, want MySQL's %v", names, describeAttrs(got), describeAttrs(want))
	}
}

// describeAttrs shows attributes by name, value and version, for failure messages.
func describeAttrs(attrs map[string]*attrcache.Attr) map[string]string {
	out := make(map[string]string, len(attrs))
	for name, a := range attrs {
		out[name] = fmt.Sprintf("%s v%d", a.Value, a.Version)
	}
	return out
}

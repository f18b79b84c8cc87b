package cache

import (
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// TestParseAttrKey parses back the keys the key scheme builds: those of attributes name their
// attribute, the others and those of another prefix name none.
func TestParseAttrKey(t *testing.T) {
	ks := keyspace{prefix: "p:"}
	user := attrcache.AttrScope{UserID: "zusr1"}
	session := attrcache.AttrScope{UserID: "zusr1", Session: "hash:with:colons"}
	tests := []struct {
		name   string
		key    string
		want   attrcache.AttrKey
		wantOK bool
	}{
		{"user attribute", ks.attr(attrcache.AttrKey{Scope: user, Name: "a:b"}), attrcache.AttrKey{Scope: user, Name: "a:b"}, true},
		{"session attribute", ks.attr(attrcache.AttrKey{Scope: attrcache.AttrScope{UserID: "zusr1", Session: "h"}, Name: "n:1"}),
			attrcache.AttrKey{Scope: attrcache.AttrScope{UserID: "zusr1", Session: "h"}, Name: "n:1"}, true},
		{"principal", ks.principal("zusr1"), attrcache.AttrKey{}, false},
		{"session", ks.session("zusr1", session.Session), attrcache.AttrKey{}, false},
		{"absent budget", ks.absentBudget("zusr1"), attrcache.AttrKey{}, false},
		{"failure counter", ks.failures("login", "x"), attrcache.AttrKey{}, false},
		{"another prefix", keyspace{prefix: "q:"}.attr(attrcache.AttrKey{Scope: user, Name: "a"}), attrcache.AttrKey{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseAttrKey(ks.prefix, tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseAttrKey(%q) = %+v, %t; want %+v, %t", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestDecodeAttrEntry decodes each value the cache writes at an attribute key.
func TestDecodeAttrEntry(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	live := &attrcache.Attr{Name: "a", Value: "{\"x\":\n1}", CreationTime: now, LastModified: now,
		ExpirationTime: attrcache.NeverExpires, Version: 42}
	liveWrite, err := attrCopyWrite("k", live, now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		raw     string
		want    AttrEntry
		wantErr bool
	}{
		{"live copy", liveWrite.value, AttrEntry{State: EntryLive, Version: 42, Value: live.Value}, false},
		{"absent marker", absentWrite("k", now).value, AttrEntry{State: EntryAbsent}, false},
		{"final tombstone", tombstoneWrite("k", now).value, AttrEntry{State: EntryTombstone}, false},
		{"versioned tombstone", versionedTombstoneWrite("k", 7, now).value, AttrEntry{State: EntryTombstone, Version: 7}, false},
		{"floor", floorWrite("k", 9, now).value, AttrEntry{State: EntryFloor, Version: 9}, false},
		{"unknown format", "something else", AttrEntry{}, true},
		{"live copy without a value", "v1:{}", AttrEntry{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeAttrEntry(tt.raw)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("DecodeAttrEntry(%q) = %+v, %v; want %+v, error %t", tt.raw, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

package cache

import (
	"slices"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
)

// crc16 is the CRC-16/XMODEM checksum Redis Cluster uses for key slots.
func crc16(data string) uint16 {
	var crc uint16
	for i := 0; i < len(data); i++ {
		crc ^= uint16(data[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// keySlot returns the Redis Cluster slot of key: the CRC16 of its hash tag (the part between the
// first '{' and the first '}' after it, when not empty) or of the whole key, modulo 16384.
func keySlot(key string) uint16 {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	return crc16(key) % 16384
}

func TestKeySlot(t *testing.T) {
	// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
	tests := []struct {
		key  string
		want uint16
	}{
		{key: "123456789", want: 0x31C3 % 16384},
		{key: "user1000", want: keySlot("{user1000}.following")},
		{key: "foo{}{bar}", want: crc16("foo{}{bar}") % 16384},
		{key: "somekey", want: 11058},
		{key: "{user1000}.followers", want: 3443},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := keySlot(tt.key); got != tt.want {
				t.Errorf("keySlot(%q) = %d, want %d", tt.key, got, tt.want)
			}
		})
	}
}

func TestUserKeysShareSlot(t *testing.T) {
	userID := attrcache.NewUserID()
	for _, prefix := range []string{"", "attrcache:", "odd{prefix}:", "half{open:"} {
		t.Run(prefix, func(t *testing.T) {
			ks := keyspace{prefix: prefix}
			keys := []string{ks.principal(userID)}
			for range 5 {
				hash := attrcache.HashSessionID(attrcache.NewSessionID())
				keys = append(keys, ks.session(userID, hash))
				keys = append(keys, ks.attrs(attrcache.AttrScope{UserID: userID, Session: hash}, []string{"{name}"})...)
			}
			keys = append(keys, ks.attrs(attrcache.AttrScope{UserID: userID}, []string{"a", "{b}", "}"})...)
			want := keySlot(keys[0])
			for _, k := range keys[1:] {
				if got := keySlot(k); got != want {
					t.Errorf("slot of %q = %d, want %d (the slot of %q)", k, got, want, keys[0])
				}
			}
		})
	}
}

func TestKeysSpreadUsersOverSlots(t *testing.T) {
	ks := keyspace{prefix: "attrcache:"}
	slots := make(map[uint16]bool)
	for range 20 {
		slots[keySlot(ks.principal(attrcache.NewUserID()))] = true
	}
	if len(slots) < 2 {
		t.Errorf("20 users got %d distinct slots, want them spread", len(slots))
	}
}

func TestRedactKey(t *testing.T) {
	userID := attrcache.NewUserID()
	hash := attrcache.HashSessionID(attrcache.NewSessionID())
	short := string(hash[:loggedHashLen]) + "…"
	for _, prefix := range []string{"p:", "odd{prefix}:"} {
		ks := keyspace{prefix: prefix}
		tag := prefix + "{" + userID + "}"
		tests := []struct {
			name string
			key  string
			want string
		}{
			{name: "principal", key: ks.principal(userID), want: tag + ":u"},
			{name: "session", key: ks.session(userID, hash), want: tag + ":s:" + short},
			{name: "user attribute", key: ks.attrs(attrcache.AttrScope{UserID: userID}, []string{"colour"})[0], want: tag + ":a:colour"},
			{
				name: "user attribute named like a session",
				key:  ks.attrs(attrcache.AttrScope{UserID: userID}, []string{"x}:s:" + string(hash)})[0],
				want: tag + ":a:x}:s:" + string(hash),
			},
			{
				name: "session attribute",
				key:  ks.attrs(attrcache.AttrScope{UserID: userID, Session: hash}, []string{"a:b"})[0],
				want: tag + ":sa:" + short + ":a:b",
			},
			{name: "another prefix", key: "other:{" + userID + "}:s:" + string(hash), want: "other:{" + userID + "}:s:" + string(hash)},
		}
		for _, tt := range tests {
			t.Run(prefix+tt.name, func(t *testing.T) {
				got := ks.redact(tt.key)
				if got != tt.want {
					t.Errorf("redact(%q) = %q, want %q", tt.key, got, tt.want)
				}
			})
		}
	}
}

func TestAttrKeys(t *testing.T) {
	ks := keyspace{prefix: "p:"}
	userID := attrcache.NewUserID()
	hash := attrcache.HashSessionID(attrcache.NewSessionID())
	tests := []struct {
		name  string
		scope attrcache.AttrScope
		names []string
		want  []string
	}{
		{
			name:  "user",
			scope: attrcache.AttrScope{UserID: userID},
			names: []string{"a", "é {x}:y"},
			want:  []string{"p:{" + userID + "}:a:a", "p:{" + userID + "}:a:é {x}:y"},
		},
		{
			name:  "session",
			scope: attrcache.AttrScope{UserID: userID, Session: hash},
			names: []string{"a"},
			want:  []string{"p:{" + userID + "}:sa:" + string(hash) + ":a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ks.attrs(tt.scope, tt.names)
			if !slices.Equal(got, tt.want) {
				t.Errorf("attrs(%+v, %q) = %q, want %q", tt.scope, tt.names, got, tt.want)
			}
		})
	}
}

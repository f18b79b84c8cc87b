package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
)

// A cached value is "v<version>:<JSON>", so that the write script can read the version without
// decoding the JSON. A deletion leaves a tombstone: "x" alone for what can never come back (a
// session, a user), which nothing may replace until it expires, or "x<version>" for what can (an
// attribute), which only a higher version replaces. The absent marker "n" records that the inner
// store had nothing: any stored version replaces it. A floor "f<version>" (relay.go) records that
// the inner store has committed that version: reads treat it as a miss, and only a value or
// tombstone of that version or a higher one replaces it.
const (
	versionMark  = "v"
	versionEnd   = ":"
	tombstone    = "x"
	absentMarker = "n"
	floorMark    = "f"
)

// entryState says what a key held when it was read.
type entryState uint8

const (
	entryNoKey entryState = iota
	entryAbsent
	entryTombstone
	entryLive
	entryFloor
)

// entry is one key as read from Redis.
type entry struct {
	state   entryState
	version int64  // entryLive and entryFloor, and entryTombstone when versioned
	payload string // entryLive only: JSON (an attribute's is followed by its value)
}

var errMalformed = errors.New("malformed cached value")

// parseEntry reads a value as MGET returns it: nil for a missing key, else a string.
func parseEntry(raw any) (entry, error) {
	if raw == nil {
		return entry{state: entryNoKey}, nil
	}
	s, ok := raw.(string)
	if !ok {
		return entry{}, fmt.Errorf("%w: a %T", errMalformed, raw)
	}
	switch {
	case s == absentMarker:
		return entry{state: entryAbsent}, nil
	case s == tombstone:
		return entry{state: entryTombstone}, nil
	case strings.HasPrefix(s, tombstone):
		v, err := strconv.ParseInt(s[len(tombstone):], 10, 64)
		if err != nil {
			return entry{}, errMalformed
		}
		return entry{state: entryTombstone, version: v}, nil
	case strings.HasPrefix(s, floorMark):
		v, err := strconv.ParseInt(s[len(floorMark):], 10, 64)
		if err != nil {
			return entry{}, errMalformed
		}
		return entry{state: entryFloor, version: v}, nil
	}
	rest, ok := strings.CutPrefix(s, versionMark)
	if !ok {
		return entry{}, errMalformed
	}
	version, payload, ok := strings.Cut(rest, versionEnd)
	if !ok {
		return entry{}, errMalformed
	}
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		return entry{}, errMalformed
	}
	return entry{state: entryLive, version: v, payload: payload}, nil
}

// encodeValue returns v, JSON-encoded, behind its version.
func encodeValue(version int64, v any) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return versionMark + strconv.FormatInt(version, 10) + versionEnd + string(payload), nil
}

// cachedSession is a Session as Redis holds it. The hash and owner are in the key and the version
// in front of the JSON; none of them is repeated.
type cachedSession struct {
	CreationTime   time.Time                      `json:"ct"`
	ExpirationTime time.Time                      `json:"et"`
	RemoteAddr     string                         `json:"ra,omitempty"`
	UserAgent      string                         `json:"ua,omitempty"`
	AuthType       string                         `json:"at,omitempty"`
	AuthPrincipal  string                         `json:"ap,omitempty"`
	ExtSessionID   string                         `json:"ext,omitempty"`
	StateChanges   []attrcache.SessionStateChange `json:"sc"`
}

func encodeSession(s *attrcache.Session) (string, error) {
	return encodeValue(s.Version, cachedSession{
		CreationTime:   s.CreationTime,
		ExpirationTime: s.ExpirationTime,
		RemoteAddr:     s.RemoteAddr,
		UserAgent:      s.UserAgent,
		AuthType:       s.AuthType,
		AuthPrincipal:  s.AuthPrincipal,
		ExtSessionID:   s.ExtSessionID,
		StateChanges:   s.StateChanges,
	})
}

func decodeSession(userID string, hash attrcache.SessionHash, e entry) (*attrcache.Session, error) {
	var c cachedSession
	if err := json.Unmarshal([]byte(e.payload), &c); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	return &attrcache.Session{
		Hash:           hash,
		UserID:         userID,
		CreationTime:   c.CreationTime,
		ExpirationTime: c.ExpirationTime,
		RemoteAddr:     c.RemoteAddr,
		UserAgent:      c.UserAgent,
		AuthType:       c.AuthType,
		AuthPrincipal:  c.AuthPrincipal,
		ExtSessionID:   c.ExtSessionID,
		StateChanges:   c.StateChanges,
		Version:        e.version,
	}, nil
}

func encodePrincipal(p *attrcache.Principal) (string, error) {
	return encodeValue(p.Version, p)
}

func decodePrincipal(e entry) (*attrcache.Principal, error) {
	var p attrcache.Principal
	if err := json.Unmarshal([]byte(e.payload), &p); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	return &p, nil
}

// cachedAttrMeta is what Redis holds of an Attr besides its value. The scope and name are in the
// key and the version in front; none of them is repeated.
type cachedAttrMeta struct {
	IsEncrypted    bool      `json:"enc,omitempty"`
	CreationTime   time.Time `json:"ct"`
	LastModified   time.Time `json:"lm"`
	ExpirationTime time.Time `json:"et"`
}

// attrValueSep ends an attribute's metadata: the value follows it byte for byte, neither escaped
// nor re-encoded. Encoded JSON never holds a raw newline, so the first one is the separator.
const attrValueSep = "\n"

// An attribute is written and read on every write and cached read, so its metadata is encoded
// and decoded by hand, byte for byte as encoding/json does for cachedAttrMeta; decoding falls
// back to encoding/json for anything else.

func encodeAttr(a *attrcache.Attr) (string, error) {
	c := cachedAttrMeta{
		IsEncrypted:    a.IsEncrypted,
		CreationTime:   a.CreationTime,
		LastModified:   a.LastModified,
		ExpirationTime: a.ExpirationTime,
	}
	if !jsonTimeYear(c.CreationTime) || !jsonTimeYear(c.LastModified) || !jsonTimeYear(c.ExpirationTime) {
		meta, err := encodeValue(a.Version, c) // fails as encoding/json does
		if err != nil {
			return "", err
		}
		return meta + attrValueSep + a.Value, nil
	}
	var b strings.Builder
	b.Grow(160 + len(a.Value))
	var scratch [64]byte
	b.WriteString(versionMark)
	b.Write(strconv.AppendInt(scratch[:0], a.Version, 10))
	b.WriteString(versionEnd)
	b.WriteByte('{')
	if c.IsEncrypted {
		b.WriteString(`"enc":true,`)
	}
	b.WriteString(`"ct":`)
	b.Write(appendJSONTime(scratch[:0], c.CreationTime))
	b.WriteString(`,"lm":`)
	b.Write(appendJSONTime(scratch[:0], c.LastModified))
	b.WriteString(`,"et":`)
	b.Write(appendJSONTime(scratch[:0], c.ExpirationTime))
	b.WriteByte('}')
	b.WriteString(attrValueSep)
	b.WriteString(a.Value)
	return b.String(), nil
}

// jsonTimeYear reports whether encoding/json can encode t: its year is 0 to 9999.
func jsonTimeYear(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

// appendJSONTime appends t as time.Time's MarshalJSON writes it.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// parseAttrMeta reads metadata as encodeAttr writes it; ok is false for anything else.
func parseAttrMeta(meta string) (c cachedAttrMeta, ok bool) {
	rest, ok := strings.CutPrefix(meta, "{")
	if !ok {
		return c, false
	}
	if rest, ok = strings.CutPrefix(rest, `"enc":true,`); ok {
		c.IsEncrypted = true
	}
	for _, field := range []struct {
		prefix string
		t      *time.Time
	}{{`"ct":"`, &c.CreationTime}, {`,"lm":"`, &c.LastModified}, {`,"et":"`, &c.ExpirationTime}} {
		if rest, ok = strings.CutPrefix(rest, field.prefix); !ok {
			return c, false
		}
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			return c, false
		}
		t, err := time.Parse(time.RFC3339Nano, rest[:end])
		if err != nil {
			return c, false
		}
		*field.t, rest = t, rest[end+1:]
	}
	return c, rest == "}"
}

func decodeAttr(scope attrcache.AttrScope, name string, e entry) (*attrcache.Attr, error) {
	meta, value, ok := strings.Cut(e.payload, attrValueSep)
	if !ok {
		return nil, fmt.Errorf("%w: no value", errMalformed)
	}
	c, ok := parseAttrMeta(meta)
	if !ok {
		if err := json.Unmarshal([]byte(meta), &c); err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
	}
	return &attrcache.Attr{
		Scope:          scope,
		Name:           name,
		Value:          value,
		IsEncrypted:    c.IsEncrypted,
		CreationTime:   c.CreationTime,
		LastModified:   c.LastModified,
		ExpirationTime: c.ExpirationTime,
		Version:        e.version,
	}, nil
}

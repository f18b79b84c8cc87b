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
// store had nothing: any stored version replaces it.
const (
	versionMark  = "v"
	versionEnd   = ":"
	tombstone    = "x"
	absentMarker = "n"
)

// entryState says what a key held when it was read.
type entryState uint8

const (
	entryNoKey entryState = iota
	entryAbsent
	entryTombstone
	entryLive
)

// entry is one key as read from Redis.
type entry struct {
	state   entryState
	version int64  // entryLive, and entryTombstone when versioned
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

func encodeAttr(a *attrcache.Attr) (string, error) {
	meta, err := encodeValue(a.Version, cachedAttrMeta{
		IsEncrypted:    a.IsEncrypted,
		CreationTime:   a.CreationTime,
		LastModified:   a.LastModified,
		ExpirationTime: a.ExpirationTime,
	})
	if err != nil {
		return "", err
	}
	return meta + attrValueSep + a.Value, nil
}

func decodeAttr(scope attrcache.AttrScope, name string, e entry) (*attrcache.Attr, error) {
	meta, value, ok := strings.Cut(e.payload, attrValueSep)
	if !ok {
		return nil, fmt.Errorf("%w: no value", errMalformed)
	}
	var c cachedAttrMeta
	if err := json.Unmarshal([]byte(meta), &c); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
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

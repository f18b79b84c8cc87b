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
// decoding the JSON; a deleted entity is the tombstone, which carries no version because nothing
// may replace it until it expires.
const (
	versionMark = "v"
	versionEnd  = ":"
	tombstone   = "x"
)

// entryState says what a key held when it was read.
type entryState uint8

const (
	entryAbsent entryState = iota
	entryTombstone
	entryLive
)

// entry is one key as read from Redis.
type entry struct {
	state   entryState
	version int64  // entryLive only
	payload []byte // JSON; entryLive only
}

var errMalformed = errors.New("malformed cached value")

// parseEntry reads a value as MGET returns it: nil for an absent key, else a string.
func parseEntry(raw any) (entry, error) {
	if raw == nil {
		return entry{state: entryAbsent}, nil
	}
	s, ok := raw.(string)
	if !ok {
		return entry{}, fmt.Errorf("%w: a %T", errMalformed, raw)
	}
	if s == tombstone {
		return entry{state: entryTombstone}, nil
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
	return entry{state: entryLive, version: v, payload: []byte(payload)}, nil
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
	if err := json.Unmarshal(e.payload, &c); err != nil {
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
	if err := json.Unmarshal(e.payload, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	return &p, nil
}

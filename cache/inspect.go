package cache

import (
	"fmt"
	"strings"

	"github.com/attrcache/attrcache"
)

// What a checker outside the package may read of the cache's keys and values: it names the
// attribute of a key and the state of a value, so that only this package knows their format.

// EntryState says what an attribute key of Redis holds.
type EntryState uint8

const (
	// EntryAbsent is the absent marker: the inner store had nothing.
	EntryAbsent EntryState = iota + 1
	// EntryTombstone is a deletion's mark, with a version or final (version 0).
	EntryTombstone
	// EntryLive is a copy of the attribute, served to reads.
	EntryLive
	// EntryFloor says the inner store has committed the version or a newer one; never served.
	EntryFloor
)

// AttrEntry is the value of an attribute key, as DecodeAttrEntry reads it.
type AttrEntry struct {
	State   EntryState
	Version int64  // the version of a live copy, a floor or a versioned tombstone
	Value   string // a live copy's value, as the inner store holds it
}

// ParseAttrKey returns the attribute that key, a Redis key under prefix, names; ok is false for
// a key of anything else (a user, a session, a budget, a failure counter) or of another prefix.
func ParseAttrKey(prefix, key string) (attr attrcache.AttrKey, ok bool) {
	rest, ok := strings.CutPrefix(key, prefix+"{")
	if !ok {
		return attrcache.AttrKey{}, false
	}
	// User ids hold no '}': the first one closes the tag.
	userID, kind, ok := strings.Cut(rest, "}")
	if !ok {
		return attrcache.AttrKey{}, false
	}
	if name, ok := strings.CutPrefix(kind, userAttrInfix); ok {
		return attrcache.AttrKey{Scope: attrcache.AttrScope{UserID: userID}, Name: name}, true
	}
	if hashAndName, ok := strings.CutPrefix(kind, sessionAttrInfix); ok {
		hash, name, ok := strings.Cut(hashAndName, sessionAttrSuffix)
		return attrcache.AttrKey{Scope: attrcache.AttrScope{UserID: userID, Session: attrcache.SessionHash(hash)}, Name: name}, ok
	}
	return attrcache.AttrKey{}, false
}

// DecodeAttrEntry reads raw, the value of an attribute key; an error for a value of no format
// the cache writes there.
func DecodeAttrEntry(raw string) (AttrEntry, error) {
	e, err := parseEntry(raw)
	if err != nil {
		return AttrEntry{}, err
	}
	switch e.state {
	case entryAbsent:
		return AttrEntry{State: EntryAbsent}, nil
	case entryTombstone:
		return AttrEntry{State: EntryTombstone, Version: e.version}, nil
	case entryFloor:
		return AttrEntry{State: EntryFloor, Version: e.version}, nil
	case entryLive:
		attr, err := decodeAttr(attrcache.AttrScope{}, "", e)
		if err != nil {
			return AttrEntry{}, err
		}
		return AttrEntry{State: EntryLive, Version: attr.Version, Value: attr.Value}, nil
	}
	return AttrEntry{}, fmt.Errorf("%w: state %d", errMalformed, e.state)
}

package attrcache

import (
	"context"
	"time"
	"unicode/utf8"
)

// Attribute limits (CONTRACT.md §4). The value limit is a default: the service's config may change it.
const (
	MaxAttrNameBytes     = 191
	DefaultMaxValueBytes = 64 << 10
	MaxAttrItems         = 1000
)

// AttrScope says whose attributes these are: a user's own (Session "") or one session's.
type AttrScope struct {
	UserID  string
	Session SessionHash
}

// IsSession reports whether the scope is a session's.
func (s AttrScope) IsSession() bool { return s.Session != "" }

// AttrKey names one attribute: its scope and its name.
type AttrKey struct {
	Scope AttrScope
	Name  string
}

// Attr is one attribute as stored. Value is the JSON text of the value, or, when IsEncrypted, the
// JSON string of its sealed envelope. ExpirationTime is NeverExpires for what never expires.
//
// Version orders the writes of one attribute, across deletions too: every write gives the row a
// version greater than any it or a deleted row of the same key had, so a cache can refuse an older
// copy, and a deletion's tombstone outranks every copy made before it.
type Attr struct {
	Scope          AttrScope
	Name           string
	Value          string
	IsEncrypted    bool
	CreationTime   time.Time
	LastModified   time.Time
	ExpirationTime time.Time
	Version        int64
}

// Live reports whether the attribute is visible at now.
func (a *Attr) Live(now time.Time) bool { return now.Before(a.ExpirationTime) }

// AttrWrite is one attribute to create, update or set. ExpiresAt nil means "no expiration given":
// a created attribute never expires, an existing one keeps its expiry.
//
// IfVersion, when set, makes the write conditional (compare-and-set): it applies only when the
// attribute's current version is *IfVersion, 0 meaning that it does not exist (or has expired).
type AttrWrite struct {
	Name        string
	Value       string
	IsEncrypted bool
	ExpiresAt   *time.Time
	IfVersion   *int64
}

// AttrWriteOp is what a checked write (AttrStore.WriteAttrsChecked) does with each item.
type AttrWriteOp uint8

// The ops of a checked write: those of SetAttrs, CreateAttrs, UpdateAttrs and DeleteAttrs.
const (
	AttrSet AttrWriteOp = iota
	AttrCreate
	AttrUpdate
	AttrDelete
)

// AttrOutcome is what a checked write did with one item. Err is the item's own error
// (ErrVersionMismatch, ErrConflict, ErrQuotaExceeded); without one, Stored is the attribute as
// written, or nil when nothing was (an update or a delete of a missing attribute), and Tombstone
// is a deletion's tombstone version (AttrDelete), 0 when nothing was deleted.
type AttrOutcome struct {
	Stored    *Attr
	Tombstone int64
	Err       error
}

// AttrStore keeps attributes. Every call sees only live attributes (expiration_time > now): an
// expired row that has not been purged yet is absent to every call and never blocks a write.
// The many-item calls are all-or-nothing.
type AttrStore interface {
	// SetAttrs creates the absent attributes and updates the others; it returns them as stored,
	// in the order of items.
	SetAttrs(ctx context.Context, scope AttrScope, items []AttrWrite, now time.Time) ([]*Attr, error)
	// CreateAttrs creates every item, or none with ErrConflict when one of them exists.
	CreateAttrs(ctx context.Context, scope AttrScope, items []AttrWrite, now time.Time) ([]*Attr, error)
	// UpdateAttrs updates the items that exist and ignores the others; it returns those updated.
	UpdateAttrs(ctx context.Context, scope AttrScope, items []AttrWrite, now time.Time) ([]*Attr, error)
	// Attrs returns the named attributes that exist, keyed by name.
	Attrs(ctx context.Context, scope AttrScope, names []string, now time.Time) (map[string]*Attr, error)
	// AttrNames returns the names of the scope's attributes, in no particular order.
	AttrNames(ctx context.Context, scope AttrScope, now time.Time) ([]string, error)
	// DeleteAttrs deletes the named attributes; missing ones are ignored. It returns a version
	// greater than that of every row it deleted, for a cache's tombstones.
	DeleteAttrs(ctx context.Context, scope AttrScope, names []string, now time.Time) (tombstone int64, err error)
	// WriteAttrsChecked applies op to items (distinct names; a delete reads only Name and
	// IfVersion) as the op's own call does, after checking each item's IfVersion, and returns
	// each item's outcome in the order of items. With atomic, the first item that fails fails
	// the call with its error and nothing is written; else the items that pass are written
	// together in one transaction, and those that fail are left out. A scope that is gone
	// (ErrNotFound) fails the call either way.
	WriteAttrsChecked(ctx context.Context, scope AttrScope, op AttrWriteOp, items []AttrWrite, atomic bool, now time.Time) ([]AttrOutcome, error)
}

// CachedAttrReader is implemented by an AttrStore with a cache in front that can answer a read
// of attributes, together with everything that decides whether the caller may make it, in one
// round trip. It is an optimisation: a caller that gets ok false takes the usual path, looking up
// the sessions and users and then calling Attrs.
type CachedAttrReader interface {
	// CachedAttrs answers q from the cache alone; ok is false when the cache does not hold all
	// of it (or cannot be read), and nothing else has been done then.
	CachedAttrs(ctx context.Context, q CachedAttrQuery) (answer CachedAttrAnswer, ok bool)
}

// CachedAttrQuery is a read of the attributes of Scope called Names, live at Now, by the caller
// whose session is (CallerID, Caller).
type CachedAttrQuery struct {
	CallerID string
	Caller   SessionHash
	Scope    AttrScope
	Names    []string
	Now      time.Time
}

// CachedAttrAnswer is what a cache holds of a CachedAttrQuery: the caller's session and
// principal; the owner of the scope, when it is not the caller's own user scope (a session
// scope's session and its owner's principal, or another user's principal); and the attributes
// that exist, keyed by name. Sessions have not ended at the query's Now. The sessions and
// principals may be shared with other answers: read them, never change them.
type CachedAttrAnswer struct {
	CallerSession   *Session
	CallerPrincipal *Principal
	OwnerSession    *Session
	OwnerPrincipal  *Principal
	Attrs           map[string]*Attr
}

// ValidAttrName reports whether name may name an attribute: 1 to MaxAttrNameBytes bytes of UTF-8
// without control characters.
func ValidAttrName(name string) bool {
	if name == "" || len(name) > MaxAttrNameBytes || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// AttrExpiry returns when an attribute given expiration seconds at arrival expires: nil when
// seconds is 0 (no expiration given). Seconds are never rounded up.
func AttrExpiry(arrival time.Time, seconds int64) *time.Time {
	if seconds <= 0 {
		return nil
	}
	if seconds >= int64(NeverExpires.Sub(arrival)/time.Second) { // also keeps the Duration from overflowing
		t := NeverExpires
		return &t
	}
	t := arrival.Add(time.Duration(seconds) * time.Second)
	return &t
}

// AttrAD is the associated data that binds an encrypted attribute value to its owner, scope and
// name, so that ciphertext moved to another row cannot be decrypted.
func AttrAD(scope AttrScope, name string) []byte {
	ad := make([]byte, 0, len(scope.UserID)+len(scope.Session)+len(name)+2)
	ad = append(ad, scope.UserID...)
	ad = append(ad, 0)
	ad = append(ad, scope.Session...)
	ad = append(ad, 0)
	return append(ad, name...)
}

// LastWritePerName returns items with each name once: a repeated name takes the fields of its
// last item at the place of its first.
func LastWritePerName(items []AttrWrite) []AttrWrite {
	distinct := make([]AttrWrite, 0, len(items))
	at := make(map[string]int, len(items))
	for _, item := range items {
		if i, seen := at[item.Name]; seen {
			distinct[i] = item
			continue
		}
		at[item.Name] = len(distinct)
		distinct = append(distinct, item)
	}
	return distinct
}

package attrcache

import (
	"context"
	"time"
)

// AttrExporter is implemented by an attribute store that can hand over all of one user's
// attributes without holding them all in memory at once.
type AttrExporter interface {
	// AttrKeyIDsOfUser returns the ids of the keys that seal the user's stored attribute values,
	// each once, in no particular order.
	AttrKeyIDsOfUser(ctx context.Context, userID string) ([]string, error)
	// ScanUserAttrs calls fn with each attribute of the user live at now: the user's own first,
	// then those of each session that has not ended, grouped by session, by name within each
	// scope. An error of fn stops the scan and is returned.
	ScanUserAttrs(ctx context.Context, userID string, now time.Time, fn func(*Attr) error) error
}

// AttrReseal replaces the sealed value of one attribute with the same value sealed again: it
// applies only while the attribute still holds Sealed, so that a write that came in between wins.
type AttrReseal struct {
	Key      AttrKey
	Sealed   string // the stored value (the JSON string of an envelope) the re-seal was made from
	Resealed string // the same JSON value, sealed with the newest key
}

// AttrResealer is implemented by an attribute store that can re-seal stored values in place.
type AttrResealer interface {
	// ResealAttrs applies each reseal whose attribute still holds its Sealed value, giving the
	// attribute a new version (and nothing else new), and returns the attributes it rewrote as
	// stored, in no particular order.
	ResealAttrs(ctx context.Context, reseals []AttrReseal) ([]*Attr, error)
}

// Sealed fields of a user's row.
const (
	SealedEmail   = "email"
	SealedTOTPKey = "totp_key"
)

// UserReseal replaces the sealed value of one field (SealedEmail or SealedTOTPKey) of a user's
// row with the same value sealed again, while the row still holds Sealed.
type UserReseal struct {
	UserID   string
	Field    string
	Sealed   string
	Resealed string
}

// UserResealer is implemented by a user store that can re-seal stored values in place.
type UserResealer interface {
	// ResealUsers applies each reseal whose user still holds its Sealed value, giving the user a
	// new version, and returns the users it rewrote as stored, in no particular order.
	ResealUsers(ctx context.Context, reseals []UserReseal) ([]*User, error)
}

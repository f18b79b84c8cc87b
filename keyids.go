package attrcache

import (
	"fmt"
	"slices"
	"strings"
)

// KeyNotConfiguredError says that a value is sealed with a key id the keyring does not have: an
// operator's error (the key was removed while data still needs it), never the client's. It
// matches ErrUndecryptable with errors.Is.
type KeyNotConfiguredError struct {
	KeyID string
}

func (e *KeyNotConfiguredError) Error() string {
	return fmt.Sprintf("value sealed with key id %q, which is not configured", e.KeyID)
}

func (e *KeyNotConfiguredError) Unwrap() error { return ErrUndecryptable }

// KeyMissing returns the error a caller sees for a value sealed with key id keyID, which the
// service is not configured with: HTTP 503, E008004, with a message naming the key id (never a
// secret), so that an operator can tell it from a dead backend and restore the key.
func KeyMissing(keyID string) *Error {
	return &Error{Kind: KindUnavailable, Code: CodeInternalError,
		Message: fmt.Sprintf("a stored value is sealed with key id %q, which is not configured", keyID),
		Err:     &KeyNotConfiguredError{KeyID: keyID}}
}

// KeyIDs returns the ids of the keyring's keys, newest (the one Seal uses) first.
func (k *Keyring) KeyIDs() []string { return slices.Clone(k.ids) }

// Has reports whether the keyring holds the key with id.
func (k *Keyring) Has(id string) bool {
	_, ok := k.keys[id]
	return ok
}

// EnvelopeKeyID returns the key id written in an envelope, and whether s has the form of one
// with a valid key id.
func EnvelopeKeyID(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, envelopePrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ".")
	if !ok || !validKeyID(id) {
		return "", false
	}
	return id, true
}

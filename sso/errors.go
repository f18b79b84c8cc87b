package sso

import (
	"errors"
	"fmt"

	"github.com/attrcache/attrcache"
)

// storeError turns an error of a store into what the caller of the API sees: an *attrcache.Error
// (Unavailable above all) passes unchanged, a value sealed with a key that is not configured is
// attrcache.KeyMissing, ErrNotFound becomes notFound (when the call expects
// it; nil means it does not), and anything else, a conflict included, is an internal error,
// wrapped with op. Writes with a conflict to report map it first (userWriteError,
// attrStoreError).
func storeError(err error, op string, notFound *attrcache.Error) error {
	var e *attrcache.Error
	var missing *attrcache.KeyNotConfiguredError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &e):
		return e
	case errors.As(err, &missing):
		return attrcache.KeyMissing(missing.KeyID)
	case notFound != nil && errors.Is(err, attrcache.ErrNotFound):
		return notFound
	default:
		return attrcache.Internal(fmt.Errorf("sso: %s: %w", op, err))
	}
}

// isDenied reports whether err is a failed check, as opposed to a backend failure or a bug.
func isDenied(err error) bool {
	var e *attrcache.Error
	return errors.As(err, &e) && e.Kind == attrcache.KindDenied
}

func noSuchSession() *attrcache.Error {
	return attrcache.Denied(attrcache.CodeNoSuchSession, "no such session")
}

// noSuchUser is E005001 with a message: the answer for an unknown user_id or username.
func noSuchUser() *attrcache.Error {
	return attrcache.Denied(attrcache.CodeNotAllowed, "no such user")
}

// checkUserID fails with noSuchUser unless userID has the exact form of a user_id
// (attrcache.ValidUserID): any other spelling (padded, re-cased, too long or short) names no
// user, and is refused before a store sees it, since a store's comparison or key might not tell
// it from the user_id it resembles.
func checkUserID(userID string) error {
	if !attrcache.ValidUserID(userID) {
		return noSuchUser()
	}
	return nil
}

func usernameTaken() *attrcache.Error {
	return attrcache.Denied(attrcache.CodeUsernameExists, "the username is already taken")
}

func superUserRequired(code string) *attrcache.Error {
	return attrcache.Denied(code, "a super-user is required")
}

// userWriteError is storeError for a write of a user's row, where the one unique key a caller can
// collide with is the username: a conflict is E001002.
func userWriteError(err error, op string, notFound *attrcache.Error) error {
	if errors.Is(err, attrcache.ErrConflict) {
		return usernameTaken()
	}
	return storeError(err, op, notFound)
}

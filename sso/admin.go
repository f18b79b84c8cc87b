package sso

import (
	"context"

	"github.com/attrcache/attrcache"
)

// The admin calls serve the command line (attrcache sso …): they act by username, need no UST
// and are not limited to super-users. A user they create is approved, with
// approval_status_mod_by "auto".

// AdminCreateUser creates a user, a super-user when superUser is true. A taken username gives
// E001002.
func (a *API) AdminCreateUser(ctx context.Context, in CreateUserInput, superUser bool) (*attrcache.User, error) {
	return nil, errNotImplemented
}

// AdminSetLocked locks or unlocks the user and returns their user_id.
func (a *API) AdminSetLocked(ctx context.Context, username string, locked bool) (string, error) {
	return "", errNotImplemented
}

// AdminDeleteUser deletes the user and returns their user_id.
func (a *API) AdminDeleteUser(ctx context.Context, username string) (string, error) {
	return "", errNotImplemented
}

// AdminChangePassword sets the user's password (checked against the policy), its expiry in days
// (<= 0: the default) and must_change, and returns their user_id.
func (a *API) AdminChangePassword(ctx context.Context, username, password string, expiryDays int, mustChange bool) (string, error) {
	return "", errNotImplemented
}

// AdminResetTOTPKey sets the user's TOTP key (generated when key is "") and returns their
// user_id and the key.
func (a *API) AdminResetTOTPKey(ctx context.Context, username, key string) (userID, totpKey string, err error) {
	return "", "", errNotImplemented
}

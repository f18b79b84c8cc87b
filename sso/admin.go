package sso

import (
	"context"

	"github.com/attrcache/attrcache"
)

// The admin calls serve the command line (attrcache sso …): they act by username, need no UST
// and are not limited to super-users. A user they create is approved, with
// approval_status_mod_by "auto". An unknown username gives E005001 with the message "no such
// user". Their audit entries have no actor and AdminRemoteAddr as their address.

// AdminRemoteAddr is the remote_addr of the audit entries of what the command line does: it acts
// for whoever runs it on the host, not for a client.
const AdminRemoteAddr = "cli"

// AdminCreateUser creates a user, a super-user when superUser is true (whose sign-up is always
// final). A missing username gives E001001, a taken one E001002, and the other input is checked
// as CreateUser checks it. The result holds no secrets.
func (a *API) AdminCreateUser(ctx context.Context, in CreateUserInput, superUser bool) (_ *attrcache.User, err error) {
	rec := a.audit("admin.user.create", "", AdminRemoteAddr)
	defer func() { rec.done(ctx, err) }()
	if superUser {
		in.SignUpStatus = attrcache.SignUpFinal
	}
	role := newUserRole{superUser: superUser, approval: attrcache.ApprovalApproved, createdBy: attrcache.ModByAuto}
	u, err := a.createUser(ctx, in, role, a.now())
	if err != nil {
		return nil, err
	}
	rec.target(u.UserID)
	return withoutSecrets(u), nil
}

// AdminSetLocked locks or unlocks the user and returns their user_id.
func (a *API) AdminSetLocked(ctx context.Context, username string, locked bool) (_ string, err error) {
	rec := a.audit("admin.user.unlock", "", AdminRemoteAddr)
	if locked {
		rec = a.audit("admin.user.lock", "", AdminRemoteAddr)
	}
	defer func() { rec.done(ctx, err) }()
	userID, err := a.userIDOf(ctx, username)
	if err != nil {
		return "", err
	}
	rec.target(userID)
	var upd attrcache.UserUpdate
	setLock(&upd, locked, attrcache.ModByAuto, a.now())
	return userID, a.updateUserByID(ctx, userID, upd)
}

// AdminDeleteUser deletes the user with their sessions and attributes and returns their user_id.
func (a *API) AdminDeleteUser(ctx context.Context, username string) (_ string, err error) {
	rec := a.audit("admin.user.delete", "", AdminRemoteAddr)
	defer func() { rec.done(ctx, err) }()
	userID, err := a.userIDOf(ctx, username)
	if err != nil {
		return "", err
	}
	rec.target(userID)
	_, err = a.users.DeleteUser(ctx, userID)
	return userID, storeError(err, "delete user", noSuchUser())
}

// AdminChangePassword sets the user's password (checked against the policy, with its specific
// codes), its expiry in days (<= 0: the default) and must_change, and returns their user_id.
func (a *API) AdminChangePassword(ctx context.Context, username, password string, expiryDays int, mustChange bool) (_ string, err error) {
	rec := a.audit("admin.password.change", "", AdminRemoteAddr)
	defer func() { rec.done(ctx, err) }()
	userID, err := a.userIDOf(ctx, username)
	if err != nil {
		return "", err
	}
	rec.target(userID)
	if err := a.cfg.Password.Validate(password); err != nil {
		return "", err
	}
	now := a.now()
	return userID, a.savePassword(ctx, userID, password, a.passwordExpiryAt(now, expiryDays), mustChange, now)
}

// AdminResetTOTPKey sets the user's TOTP key (generated when key is "", E008002 when it is not
// base32) and returns their user_id and the key. The label is left as it is.
func (a *API) AdminResetTOTPKey(ctx context.Context, username, key string) (userID, totpKey string, err error) {
	rec := a.audit("admin.totp.reset", "", AdminRemoteAddr)
	defer func() { rec.done(ctx, err) }()
	if userID, err = a.userIDOf(ctx, username); err != nil {
		return "", "", err
	}
	rec.target(userID)
	if totpKey, err = a.resetTOTPKey(ctx, userID, key, nil); err != nil {
		return "", "", err
	}
	return userID, totpKey, nil
}

// userIDOf returns the user_id of username (E005001 "no such user" if there is none).
func (a *API) userIDOf(ctx context.Context, username string) (string, error) {
	if username == "" {
		return "", noSuchUser()
	}
	u, err := a.users.UserByUsername(ctx, username)
	if err != nil {
		return "", storeError(err, "look up user", noSuchUser())
	}
	return u.UserID, nil
}

package sso

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/attrcache/attrcache"
)

// ChangePasswordInput is a password change. UserID "" is the caller.
type ChangePasswordInput struct {
	UserID             string
	OldPassword        string
	NewPassword        string
	PasswordExpiryDays int // <= 0: the default
	MustChange         bool
}

// ChangePassword sets a new password (zato-sso-reference.md §6).
//
// A user changing their own password (super-users included) must give the right OldPassword, and
// any failure, the policy's included, is E005001; PasswordExpiryDays and MustChange do not apply.
// A wrong OldPassword counts, as a wrong password at login does, against the user's username and
// remoteAddr; once either has failed too often, the change gets a KindThrottled error (E005001,
// RetryAfter set) before OldPassword is looked at.
// A super-user changing another user's password needs no OldPassword, may set PasswordExpiryDays
// and MustChange, and gets the policy's specific codes (E003002, E003003, E003001); an unknown
// user, or a UserID not of the exact form of a user_id, gives E005001. A regular user naming
// another user gives E008002.
func (a *API) ChangePassword(ctx context.Context, cid string, in ChangePasswordInput, ust, app, remoteAddr string) (err error) {
	rec := a.auditUST("password.change", cid, ust, remoteAddr)
	rec.target(cmp.Or(in.UserID, rec.actor()))
	defer func() { rec.done(ctx, err) }()
	now := a.now()
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return err
	}
	if in.UserID == "" || in.UserID == c.userID() {
		return a.changeOwnPassword(ctx, c.userID(), in.OldPassword, in.NewPassword, remoteAddr, now)
	}
	if err := c.requireSuperUser(attrcache.CodeInvalidInput); err != nil {
		return err
	}
	if err := checkUserID(in.UserID); err != nil {
		return err
	}
	if err := a.cfg.Password.Validate(in.NewPassword); err != nil {
		return err
	}
	return a.savePassword(ctx, in.UserID, in.NewPassword, a.passwordExpiryAt(now, in.PasswordExpiryDays), in.MustChange, now)
}

func (a *API) changeOwnPassword(ctx context.Context, userID, oldPassword, newPassword, clientAddr string, now time.Time) error {
	u, err := a.users.UserByID(ctx, userID)
	if err != nil {
		return storeError(err, "get user", noSuchUser())
	}
	limits := a.throttle.loginLimits(u.Username, clientAddr)
	if err := a.throttle.check(ctx, limits); err != nil {
		return err
	}
	ok, err := verifyPassword(u.PasswordHash, oldPassword)
	if err != nil {
		return attrcache.Internal(fmt.Errorf("sso: password of user %s: %w", userID, err))
	}
	if !ok || oldPassword == "" {
		a.throttle.failed(ctx, limits)
		return attrcache.NotAllowed()
	}
	a.throttle.succeeded(ctx, u.Username)
	if a.cfg.Password.Validate(newPassword) != nil {
		return attrcache.NotAllowed()
	}
	return a.savePassword(ctx, userID, newPassword, a.passwordExpiryAt(now, 0), false, now)
}

// savePassword hashes and stores the user's new password, which expires at expiry. An unknown
// user gives E005001.
func (a *API) savePassword(ctx context.Context, userID, password string, expiry time.Time, mustChange bool, now time.Time) error {
	hash, err := hashPassword(a.cfg.Hash, password)
	if err != nil {
		return attrcache.Internal(err)
	}
	return a.updateUserByID(ctx, userID, attrcache.UserUpdate{
		PasswordHash:       attrcache.SetTo(hash),
		PasswordIsSet:      attrcache.SetTo(true),
		PasswordMustChange: attrcache.SetTo(mustChange),
		PasswordLastSet:    attrcache.SetTo(now),
		PasswordExpiry:     attrcache.SetTo(expiry),
	})
}

// passwordExpiryAt is when a password set at now expires: after days, or after
// Config.PasswordExpiry when days <= 0.
func (a *API) passwordExpiryAt(now time.Time, days int) time.Time {
	if days <= 0 {
		return now.Add(a.cfg.PasswordExpiry)
	}
	return now.AddDate(0, 0, days)
}

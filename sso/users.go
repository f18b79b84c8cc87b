package sso

import (
	"cmp"
	"context"
	"strings"
	"time"

	"github.com/attrcache/attrcache"
)

// UserView is a user as shown to a caller: Full is true when the caller is a super-user and may
// see every field; otherwise only the regular fields are shown. User never holds the password
// hash, the TOTP key or the sign-up token. Attr is the user's attributes, used as the caller
// (see AttrAPI).
type UserView struct {
	User *attrcache.User
	Full bool
	Attr *AttrAPI
}

// GetCurrentUser returns the caller's own user.
func (a *API) GetCurrentUser(ctx context.Context, cid, ust, app, remoteAddr string) (_ *UserView, err error) {
	rec := a.auditUST("user.get", cid, ust, remoteAddr)
	rec.target(rec.actor())
	defer func() { rec.done(ctx, err) }()
	c, err := a.authenticate(ctx, ust, app, a.now())
	if err != nil {
		return nil, err
	}
	return a.userView(ctx, c, cid, c.userID(), ust, app, remoteAddr)
}

// GetUserByID returns any user to a super-user (E005001 otherwise, or for a userID that is
// unknown or not of the exact form of a user_id).
func (a *API) GetUserByID(ctx context.Context, cid, userID, ust, app, remoteAddr string) (_ *UserView, err error) {
	rec := a.auditUST("user.get", cid, ust, remoteAddr).target(userID)
	defer func() { rec.done(ctx, err) }()
	c, err := a.authenticate(ctx, ust, app, a.now())
	if err != nil {
		return nil, err
	}
	if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
		return nil, err
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	return a.userView(ctx, c, cid, userID, ust, app, remoteAddr)
}

// userView returns the user userID as the caller c, whose cid, UST, app and address the view's
// attribute API keeps, sees them.
func (a *API) userView(ctx context.Context, c *caller, cid, userID, ust, app, remoteAddr string) (*UserView, error) {
	u, err := a.users.UserByID(ctx, userID)
	if err != nil {
		return nil, storeError(err, "get user", noSuchUser())
	}
	return &UserView{
		User: withoutSecrets(u),
		Full: c.principal.IsSuperUser,
		Attr: a.userAttrAPI(cid, u.UserID, ust, app, remoteAddr),
	}, nil
}

// withoutSecrets returns a copy of u without what no caller may see.
func withoutSecrets(u *attrcache.User) *attrcache.User {
	public := *u
	public.PasswordHash = ""
	public.TOTPKey = ""
	public.SignUpConfirmToken = ""
	return &public
}

// CreateUserInput is a new user. Nil pointers are absent values.
type CreateUserInput struct {
	Username           string
	Password           *string // nil: a random password is generated
	Email              *string
	DisplayName        *string
	FirstName          *string
	MiddleName         *string
	LastName           *string
	IsLocked           bool
	PasswordMustChange bool
	IsTOTPEnabled      bool
	TOTPKey            *string // nil or "": generated
	TOTPLabel          *string
	SignUpStatus       string // "": final
	AutoApprove        bool
}

// CreateUser creates a regular user; the caller must be a super-user (E005001). The user is
// approved when in.AutoApprove is set or Config.ApprovalNeeded is not, and waits for a decision
// otherwise. The username must pass attrcache.CheckUsername (E001001, E001003, E001004: no white
// space at either end, no control or invisible character); a taken one gives E001002, a sign_up_status other than
// before_confirmation or final or a TOTP key that is not base32 E008002, and a password that fails
// the policy its specific code. The result holds no secrets.
func (a *API) CreateUser(ctx context.Context, cid string, in CreateUserInput, ust, app, remoteAddr string) (_ *attrcache.User, err error) {
	rec := a.auditUST("user.create", cid, ust, remoteAddr)
	defer func() { rec.done(ctx, err) }()
	now := a.now()
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return nil, err
	}
	if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
		return nil, err
	}
	u, err := a.createUser(ctx, in, newUserRole{approval: a.initialApproval(in.AutoApprove), createdBy: c.userID()}, now)
	if err != nil {
		return nil, err
	}
	rec.target(u.UserID)
	return withoutSecrets(u), nil
}

// initialApproval is the approval_status of a user created over the API or signed up.
func (a *API) initialApproval(autoApprove bool) string {
	if autoApprove || !a.cfg.ApprovalNeeded {
		return attrcache.ApprovalApproved
	}
	return attrcache.ApprovalBeforeDecision
}

// newUserRole is what the creator of a user decides beyond the input.
type newUserRole struct {
	superUser bool
	approval  string
	createdBy string // the creator: a user_id or attrcache.ModByAuto; approval_status_mod_by and locked_by
	// confirmTokenHash is attrcache.HashSignUpToken of a sign-up's confirmation token; "" for
	// users who did not sign up.
	confirmTokenHash string
}

// createUser checks in and stores the new user it describes; see CreateUser for the errors.
func (a *API) createUser(ctx context.Context, in CreateUserInput, role newUserRole, now time.Time) (*attrcache.User, error) {
	if err := attrcache.CheckUsername(in.Username); err != nil {
		return nil, err
	}
	signUpStatus := in.SignUpStatus
	if signUpStatus == "" {
		signUpStatus = attrcache.SignUpFinal
	}
	if signUpStatus != attrcache.SignUpFinal && signUpStatus != attrcache.SignUpBeforeConfirmation {
		return nil, attrcache.InvalidInput("sign_up_status must be %s or %s", attrcache.SignUpBeforeConfirmation, attrcache.SignUpFinal)
	}
	password := randomToken()
	if in.Password != nil {
		password = *in.Password
		if err := a.cfg.Password.Validate(password); err != nil {
			return nil, err
		}
	}
	totpKey, err := totpKeyOrNew(in.TOTPKey)
	if err != nil {
		return nil, err
	}
	hash, err := hashPassword(a.cfg.Hash, password)
	if err != nil {
		return nil, attrcache.Internal(err)
	}
	firstName, middleName, lastName := trimmedName(in.FirstName), trimmedName(in.MiddleName), trimmedName(in.LastName)
	displayName := trimmedName(in.DisplayName)
	if displayName == nil {
		displayName = joinNames(firstName, middleName, lastName)
	}
	u := &attrcache.User{
		UserID:                attrcache.NewUserID(),
		Username:              in.Username,
		Email:                 nonEmpty(in.Email),
		DisplayName:           displayName,
		FirstName:             firstName,
		MiddleName:            middleName,
		LastName:              lastName,
		IsActive:              true,
		IsSuperUser:           role.superUser,
		CreationCtx:           "null",
		ApprovalStatus:        role.approval,
		ApprovalStatusModBy:   role.createdBy,
		ApprovalStatusModTime: now,
		PasswordHash:          hash,
		PasswordIsSet:         true,
		PasswordMustChange:    in.PasswordMustChange,
		PasswordLastSet:       now,
		PasswordExpiry:        a.passwordExpiryAt(now, 0),
		SignUpStatus:          signUpStatus,
		SignUpTime:            now,
		SignUpConfirmToken:    role.confirmTokenHash,
		IsTOTPEnabled:         in.IsTOTPEnabled,
		TOTPKey:               totpKey,
		TOTPLabel:             nonEmpty(in.TOTPLabel),
	}
	if in.IsLocked {
		u.IsLocked = true
		u.LockedTime = &now
		u.LockedBy = &role.createdBy
	}
	if err := a.users.CreateUser(ctx, u); err != nil {
		return nil, userWriteError(err, "create user", nil)
	}
	return u, nil
}

// totpKeyOrNew returns key when it is valid base32 (E008002 otherwise), or a new key when key is
// nil or "".
func totpKeyOrNew(key *string) (string, error) {
	if key == nil || *key == "" {
		return attrcache.NewTOTPKey(), nil
	}
	if _, err := attrcache.DecodeTOTPKey(*key); err != nil {
		return "", attrcache.InvalidInput("totp_key is not valid base32")
	}
	return *key, nil
}

// nonEmpty returns s, or nil when s is nil or "".
func nonEmpty(s *string) *string {
	if s == nil || *s == "" {
		return nil
	}
	return s
}

// trimmedName returns the name without surrounding white space, or nil when nothing is left.
func trimmedName(s *string) *string {
	if s == nil {
		return nil
	}
	trimmed := strings.TrimSpace(*s)
	return nonEmpty(&trimmed)
}

// joinNames returns the given names joined by one space, or nil when there are none.
func joinNames(names ...*string) *string {
	var parts []string
	for _, n := range names {
		if n != nil {
			parts = append(parts, *n)
		}
	}
	joined := strings.Join(parts, " ")
	return nonEmpty(&joined)
}

// DeleteUserByID deletes a user with their sessions and attributes; super-user only (E005001).
// A missing or unknown user_id, or the caller's own, gives E008001; one not of the exact form of
// a user_id names no user: E005001.
func (a *API) DeleteUserByID(ctx context.Context, cid, userID, ust, app, remoteAddr string) (err error) {
	ctx = attrcache.WithCID(ctx, cid)
	rec := a.auditUST("user.delete", cid, ust, remoteAddr).target(userID)
	defer func() { rec.done(ctx, err) }()
	c, err := a.authenticate(ctx, ust, app, a.now())
	if err != nil {
		return err
	}
	if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
		return err
	}
	switch userID {
	case "":
		return attrcache.Denied(attrcache.CodeInvalidOperation, "user_id is required")
	case c.userID():
		return attrcache.Denied(attrcache.CodeInvalidOperation, "a user cannot delete themselves")
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	_, err = a.users.DeleteUser(ctx, userID)
	return storeError(err, "delete user", attrcache.Denied(attrcache.CodeInvalidOperation, "no such user"))
}

// ApproveUser sets the user's approval_status to approved; super-user only (E008002). An unknown
// user gives E005001.
func (a *API) ApproveUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) (err error) {
	rec := a.auditUST("user.approve", cid, ust, remoteAddr).target(userID)
	defer func() { rec.done(ctx, err) }()
	return a.decideApproval(ctx, userID, attrcache.ApprovalApproved, ust, app)
}

// RejectUser sets the user's approval_status to rejected, which ends their sessions at once;
// super-user only (E008002). An unknown user gives E005001.
func (a *API) RejectUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) (err error) {
	rec := a.auditUST("user.reject", cid, ust, remoteAddr).target(userID)
	defer func() { rec.done(ctx, err) }()
	return a.decideApproval(ctx, userID, attrcache.ApprovalRejected, ust, app)
}

func (a *API) decideApproval(ctx context.Context, userID, status, ust, app string) error {
	now := a.now()
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return err
	}
	if err := c.requireSuperUser(attrcache.CodeInvalidInput); err != nil {
		return err
	}
	var upd attrcache.UserUpdate
	setApproval(&upd, status, c.userID(), now)
	return a.updateUserByID(ctx, userID, upd)
}

// LockUser locks the user, which ends their sessions at once; super-user only (E005001). An
// unknown user gives E005001.
func (a *API) LockUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) (err error) {
	rec := a.auditUST("user.lock", cid, ust, remoteAddr).target(userID)
	defer func() { rec.done(ctx, err) }()
	return a.setLocked(ctx, userID, true, ust, app)
}

// UnlockUser unlocks the user; super-user only (E005001). An unknown user gives E005001.
func (a *API) UnlockUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) (err error) {
	rec := a.auditUST("user.unlock", cid, ust, remoteAddr).target(userID)
	defer func() { rec.done(ctx, err) }()
	return a.setLocked(ctx, userID, false, ust, app)
}

func (a *API) setLocked(ctx context.Context, userID string, locked bool, ust, app string) error {
	now := a.now()
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return err
	}
	if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
		return err
	}
	var upd attrcache.UserUpdate
	setLock(&upd, locked, c.userID(), now)
	return a.updateUserByID(ctx, userID, upd)
}

// updateUserByID writes upd; an unknown user, or a userID not of the exact form of a user_id,
// gives E005001.
func (a *API) updateUserByID(ctx context.Context, userID string, upd attrcache.UserUpdate) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	_, err := a.users.UpdateUser(ctx, userID, upd)
	return userWriteError(err, "update user", noSuchUser())
}

// setLock makes upd lock the user (recording when and by whom) or unlock them (clearing both).
func setLock(upd *attrcache.UserUpdate, locked bool, by string, now time.Time) {
	upd.IsLocked = attrcache.SetTo(locked)
	if locked {
		upd.LockedTime = attrcache.SetTo(&now)
		upd.LockedBy = attrcache.SetTo(&by)
	} else {
		upd.LockedTime = attrcache.SetTo[*time.Time](nil)
		upd.LockedBy = attrcache.SetTo[*string](nil)
	}
}

// setApproval makes upd set the approval status, recording when and by whom.
func setApproval(upd *attrcache.UserUpdate, status, by string, now time.Time) {
	upd.ApprovalStatus = attrcache.SetTo(status)
	upd.ApprovalStatusModBy = attrcache.SetTo(by)
	upd.ApprovalStatusModTime = attrcache.SetTo(now)
}

// ResetTOTPKey sets a user's TOTP key (generated when totpKey is "") and label ("" for the
// default label), and returns the key. userID "" is the caller; any other userID needs a
// super-user (E008002, even the caller's own id, as in Zato). An unknown user, or a userID not of
// the exact form of a user_id, gives E005001 and a key that is not base32 E008002.
func (a *API) ResetTOTPKey(ctx context.Context, cid, userID, totpKey, totpLabel, ust, app, remoteAddr string) (_ string, err error) {
	rec := a.auditUST("totp.reset", cid, ust, remoteAddr)
	rec.target(cmp.Or(userID, rec.actor()))
	defer func() { rec.done(ctx, err) }()
	c, err := a.authenticate(ctx, ust, app, a.now())
	if err != nil {
		return "", err
	}
	target := c.userID()
	if userID != "" {
		if err := c.requireSuperUser(attrcache.CodeInvalidInput); err != nil {
			return "", err
		}
		if err := checkUserID(userID); err != nil {
			return "", err
		}
		target = userID
	}
	return a.resetTOTPKey(ctx, target, totpKey, &totpLabel)
}

// resetTOTPKey sets the user's TOTP key (a new one when key is "") and, unless label is nil, the
// label, and returns the key.
func (a *API) resetTOTPKey(ctx context.Context, userID, key string, label *string) (string, error) {
	key, err := totpKeyOrNew(&key)
	if err != nil {
		return "", err
	}
	upd := attrcache.UserUpdate{TOTPKey: attrcache.SetTo(key)}
	if label != nil {
		upd.TOTPLabel = attrcache.SetTo(nonEmpty(label))
	}
	if err := a.updateUserByID(ctx, userID, upd); err != nil {
		return "", err
	}
	return key, nil
}

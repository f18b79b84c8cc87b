package sso

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/attrcache/attrcache"
)

// updateField is one key an update may carry (zato-sso-reference.md §3): who may send it, what
// JSON null means for it, and how its value is checked and set.
type updateField struct {
	key       string
	superUser bool // only a super-user may send it
	isBool    bool // the value is a boolean (a query string sends "true" or "false")
	// onNull is what a nil value means: nullAsValue passes nil on (a NULL column, or a value the
	// setter refuses), nullAbsent ignores the key, nullFalse is false.
	onNull nullRule
	set    func(upd *attrcache.UserUpdate, key string, v any, by string, now time.Time) error
}

type nullRule int

const (
	nullAsValue nullRule = iota
	nullAbsent
	nullFalse
)

// updateFields is every key an update may carry, the regular ones first; any other is ignored.
var updateFields = []updateField{
	{key: "username", set: setUsername},
	{key: "email", set: setNullable(func(u *attrcache.UserUpdate) *attrcache.Field[*string] { return &u.Email })},
	{key: "display_name", set: setNullable(func(u *attrcache.UserUpdate) *attrcache.Field[*string] { return &u.DisplayName })},
	{key: "first_name", set: setNullable(func(u *attrcache.UserUpdate) *attrcache.Field[*string] { return &u.FirstName })},
	{key: "middle_name", set: setNullable(func(u *attrcache.UserUpdate) *attrcache.Field[*string] { return &u.MiddleName })},
	{key: "last_name", set: setNullable(func(u *attrcache.UserUpdate) *attrcache.Field[*string] { return &u.LastName })},
	{key: "is_totp_enabled", isBool: true, onNull: nullFalse, set: setBool(func(u *attrcache.UserUpdate) *attrcache.Field[bool] { return &u.IsTOTPEnabled })},
	{key: "totp_label", set: setNullable(func(u *attrcache.UserUpdate) *attrcache.Field[*string] { return &u.TOTPLabel })},
	{key: "is_locked", superUser: true, isBool: true, onNull: nullAbsent, set: setLocked},
	{key: "password_expiry", superUser: true, onNull: nullAbsent, set: setPasswordExpiry},
	{key: "password_must_change", superUser: true, isBool: true, onNull: nullAbsent, set: setBool(func(u *attrcache.UserUpdate) *attrcache.Field[bool] { return &u.PasswordMustChange })},
	{key: "sign_up_status", superUser: true, set: setSignUpStatus},
	{key: "approval_status", superUser: true, set: setApprovalStatus},
}

// UpdateKeys returns the keys UpdateCurrentUser and UpdateUserByID read: the regular ones, then
// the super-users'. The caller may keep and change the slice.
func UpdateKeys() []string {
	keys := make([]string, len(updateFields))
	for i, f := range updateFields {
		keys[i] = f.key
	}
	return keys
}

// IsBoolUpdateKey reports whether the update key takes a boolean (a Go bool in data).
func IsBoolUpdateKey(key string) bool {
	i := slices.IndexFunc(updateFields, func(f updateField) bool { return f.key == key })
	return i >= 0 && updateFields[i].isBool
}

// UpdateCurrentUser updates the caller's own user from data, keyed by Zato's names. A key absent
// from data leaves the column alone; a nil value clears it where the reference allows.
//
// Values are what encoding/json decodes (string, bool, nil; numbers are refused) or Go values
// (bool, time.Time for password_expiry, which may also be an ISO 8601 string). nil counts as
// absent for is_locked, password_must_change and password_expiry, as false for is_totp_enabled,
// and fails E008002 for username, sign_up_status and approval_status. Keys outside both lists are
// ignored; no key left gives E008003. A super-user key from a regular user, a value of the wrong
// type and an unknown status fail E008002; a username that attrcache.CheckUsername refuses its
// code (E001001, E001003, E001004), an empty one E008002, one another user has E001002. Setting is_locked
// also sets (or clears) locked_time and locked_by; setting approval_status records who and when.
func (a *API) UpdateCurrentUser(ctx context.Context, cid string, data map[string]any, ust, app, remoteAddr string) (err error) {
	rec := a.auditUST("user.update", cid, ust, remoteAddr)
	rec.target(rec.actor())
	defer func() { rec.done(ctx, err) }()
	return a.updateUser(ctx, "", data, ust, app)
}

// UpdateUserByID updates the user userID ("" is the caller) from data; see UpdateCurrentUser. A
// regular user naming anyone else gives E008002; a super-user naming an unknown user, or a userID
// not of the exact form of a user_id, E005001.
func (a *API) UpdateUserByID(ctx context.Context, cid, userID string, data map[string]any, ust, app, remoteAddr string) (err error) {
	rec := a.auditUST("user.update", cid, ust, remoteAddr)
	rec.target(cmp.Or(userID, rec.actor()))
	defer func() { rec.done(ctx, err) }()
	return a.updateUser(ctx, userID, data, ust, app)
}

// updateUser runs the checks of an update in Zato's order and writes it.
func (a *API) updateUser(ctx context.Context, userID string, data map[string]any, ust, app string) error {
	if err := a.checkApp(app); err != nil {
		return err
	}
	fields := givenFields(data)
	if len(fields) == 0 {
		return attrcache.Denied(attrcache.CodeMissingInput, "no key that can be updated was given")
	}
	now := a.now()
	c, err := a.checkSession(ctx, ust, now)
	if err != nil {
		return err
	}
	if userID == "" {
		userID = c.userID()
	}
	if !c.principal.IsSuperUser && userID != c.userID() {
		return attrcache.InvalidInput("a regular user may update only their own account")
	}
	for _, f := range fields {
		if f.superUser && !c.principal.IsSuperUser {
			return attrcache.InvalidInput("only a super-user may set %s", f.key)
		}
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	var upd attrcache.UserUpdate
	for _, f := range fields {
		if err := f.set(&upd, f.key, f.value, c.userID(), now); err != nil {
			return err
		}
	}
	if err := a.checkUsernameFree(ctx, upd.Username, userID); err != nil {
		return err
	}
	return a.updateUserByID(ctx, userID, upd)
}

// givenField is a key of updateFields that an update was given, with its value.
type givenField struct {
	updateField
	value any
}

// givenFields returns the keys of data that an update uses, in the order of updateFields, with
// the null rules applied.
func givenFields(data map[string]any) []givenField {
	var given []givenField
	for _, f := range updateFields {
		v, ok := data[f.key]
		if !ok {
			continue
		}
		if v == nil {
			switch f.onNull {
			case nullAbsent:
				continue
			case nullFalse:
				v = false
			}
		}
		given = append(given, givenField{updateField: f, value: v})
	}
	return given
}

// checkUsernameFree fails E001002 when the update sets a username that belongs to another user
// than userID.
func (a *API) checkUsernameFree(ctx context.Context, username attrcache.Field[string], userID string) error {
	if !username.Set {
		return nil
	}
	owner, err := a.users.UserByUsername(ctx, username.Value)
	switch {
	case errors.Is(err, attrcache.ErrNotFound):
		return nil
	case err != nil:
		return storeError(err, "look up username", nil)
	case owner.UserID != userID:
		return usernameTaken()
	}
	return nil
}

func setUsername(upd *attrcache.UserUpdate, key string, v any, _ string, _ time.Time) error {
	name, err := stringValue(key, v)
	switch {
	case err != nil:
		return err
	case name == "":
		return attrcache.InvalidInput("username must not be empty")
	}
	upd.Username = attrcache.SetTo(name)
	return attrcache.CheckUsername(name)
}

// setNullable returns the setter of a string column that nil sets to NULL.
func setNullable(field func(*attrcache.UserUpdate) *attrcache.Field[*string]) func(*attrcache.UserUpdate, string, any, string, time.Time) error {
	return func(upd *attrcache.UserUpdate, key string, v any, _ string, _ time.Time) error {
		var err error
		*field(upd), err = nullableString(key, v)
		return err
	}
}

// setBool returns the setter of a boolean column.
func setBool(field func(*attrcache.UserUpdate) *attrcache.Field[bool]) func(*attrcache.UserUpdate, string, any, string, time.Time) error {
	return func(upd *attrcache.UserUpdate, key string, v any, _ string, _ time.Time) error {
		var err error
		*field(upd), err = boolField(key, v)
		return err
	}
}

func setLocked(upd *attrcache.UserUpdate, key string, v any, by string, now time.Time) error {
	locked, err := boolValue(key, v)
	if err == nil {
		setLock(upd, locked, by, now)
	}
	return err
}

func setPasswordExpiry(upd *attrcache.UserUpdate, key string, v any, _ string, _ time.Time) error {
	expiry, err := timeValue(key, v)
	if err == nil {
		upd.PasswordExpiry = attrcache.SetTo(expiry)
	}
	return err
}

func setSignUpStatus(upd *attrcache.UserUpdate, key string, v any, _ string, _ time.Time) error {
	status, err := oneOf(key, v, attrcache.SignUpBeforeConfirmation, attrcache.SignUpFinal)
	if err == nil {
		upd.SignUpStatus = attrcache.SetTo(status)
	}
	return err
}

func setApprovalStatus(upd *attrcache.UserUpdate, key string, v any, by string, now time.Time) error {
	status, err := oneOf(key, v, attrcache.ApprovalApproved, attrcache.ApprovalRejected, attrcache.ApprovalBeforeDecision)
	if err == nil {
		setApproval(upd, status, by, now)
	}
	return err
}

func stringValue(key string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", attrcache.InvalidInput("%s must be a string", key)
	}
	return s, nil
}

// nullableString reads a string field that nil sets to NULL.
func nullableString(key string, v any) (attrcache.Field[*string], error) {
	if v == nil {
		return attrcache.SetTo[*string](nil), nil
	}
	s, err := stringValue(key, v)
	return attrcache.SetTo(&s), err
}

func boolValue(key string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, attrcache.InvalidInput("%s must be a boolean", key)
	}
	return b, nil
}

func boolField(key string, v any) (attrcache.Field[bool], error) {
	b, err := boolValue(key, v)
	return attrcache.SetTo(b), err
}

// timeValue reads a time.Time or an ISO 8601 string.
func timeValue(key string, v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t.UTC().Truncate(time.Microsecond), nil
	case string:
		if parsed, err := attrcache.ParseTime(t); err == nil {
			return parsed, nil
		}
	}
	return time.Time{}, attrcache.InvalidInput("%s must be a date and time in ISO 8601 form", key)
}

// oneOf reads a string that must be one of allowed.
func oneOf(key string, v any, allowed ...string) (string, error) {
	s, err := stringValue(key, v)
	if err == nil && !slices.Contains(allowed, s) {
		err = attrcache.InvalidInput("%s must be one of %v", key, allowed)
	}
	return s, err
}

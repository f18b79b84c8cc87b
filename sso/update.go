package sso

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/attrcache/attrcache"
)

// The keys an update may carry (zato-sso-reference.md §3): every user may send the regular ones,
// only super-users the others. Any other key is ignored.
var (
	regularUpdateKeys = []string{
		"username", "email", "display_name", "first_name", "middle_name", "last_name", "is_totp_enabled", "totp_label",
	}
	superUserUpdateKeys = []string{
		"is_locked", "password_expiry", "password_must_change", "sign_up_status", "approval_status",
	}
	updateKeys = slices.Concat(regularUpdateKeys, superUserUpdateKeys)
)

// UpdateKeys returns the keys UpdateCurrentUser and UpdateUserByID read: the regular ones, then
// the super-users'. The caller may keep and change the slice.
func UpdateKeys() []string { return slices.Clone(updateKeys) }

// IsBoolUpdateKey reports whether the update key takes a boolean (a Go bool in data).
func IsBoolUpdateKey(key string) bool {
	switch key {
	case "is_totp_enabled", "is_locked", "password_must_change":
		return true
	}
	return false
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
func (a *API) UpdateCurrentUser(ctx context.Context, cid string, data map[string]any, ust, app, remoteAddr string) error {
	return a.updateUser(ctx, "", data, ust, app)
}

// UpdateUserByID updates the user userID ("" is the caller) from data; see UpdateCurrentUser. A
// regular user naming anyone else gives E008002; a super-user naming an unknown user, or a userID
// not of the exact form of a user_id, E005001.
func (a *API) UpdateUserByID(ctx context.Context, cid, userID string, data map[string]any, ust, app, remoteAddr string) error {
	return a.updateUser(ctx, userID, data, ust, app)
}

// updateUser runs the checks of an update in Zato's order and writes it.
func (a *API) updateUser(ctx context.Context, userID string, data map[string]any, ust, app string) error {
	if err := a.checkApp(app); err != nil {
		return err
	}
	fields := updateFields(data)
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
	if !c.principal.IsSuperUser {
		if userID != c.userID() {
			return attrcache.InvalidInput("a regular user may update only their own account")
		}
		for _, key := range superUserUpdateKeys {
			if _, ok := fields[key]; ok {
				return attrcache.InvalidInput("only a super-user may set %s", key)
			}
		}
	}
	if err := checkUserID(userID); err != nil {
		return err
	}
	var upd attrcache.UserUpdate
	for _, key := range updateKeys {
		if v, ok := fields[key]; ok {
			if err := setUpdateField(&upd, key, v, c.userID(), now); err != nil {
				return err
			}
		}
	}
	if err := a.checkUsernameFree(ctx, upd.Username, userID); err != nil {
		return err
	}
	return a.updateUserByID(ctx, userID, upd)
}

// updateFields returns the keys of data that an update uses, with the null rules applied: nil
// drops is_locked, password_must_change and password_expiry and turns is_totp_enabled into false.
func updateFields(data map[string]any) map[string]any {
	fields := make(map[string]any)
	for _, key := range updateKeys {
		v, ok := data[key]
		if !ok {
			continue
		}
		if v == nil {
			switch key {
			case "is_locked", "password_must_change", "password_expiry":
				continue
			case "is_totp_enabled":
				v = false
			}
		}
		fields[key] = v
	}
	return fields
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

// setUpdateField checks the value v of key and sets it in upd; by is the caller's user_id.
func setUpdateField(upd *attrcache.UserUpdate, key string, v any, by string, now time.Time) error {
	var err error
	switch key {
	case "username":
		var name string
		if name, err = stringValue(key, v); err == nil {
			if name == "" {
				err = attrcache.InvalidInput("username must not be empty")
			} else {
				err = attrcache.CheckUsername(name)
			}
		}
		upd.Username = attrcache.SetTo(name)
	case "email":
		upd.Email, err = nullableString(key, v)
	case "display_name":
		upd.DisplayName, err = nullableString(key, v)
	case "first_name":
		upd.FirstName, err = nullableString(key, v)
	case "middle_name":
		upd.MiddleName, err = nullableString(key, v)
	case "last_name":
		upd.LastName, err = nullableString(key, v)
	case "totp_label":
		upd.TOTPLabel, err = nullableString(key, v)
	case "is_totp_enabled":
		upd.IsTOTPEnabled, err = boolField(key, v)
	case "password_must_change":
		upd.PasswordMustChange, err = boolField(key, v)
	case "is_locked":
		var locked bool
		if locked, err = boolValue(key, v); err == nil {
			setLock(upd, locked, by, now)
		}
	case "password_expiry":
		var expiry time.Time
		if expiry, err = timeValue(key, v); err == nil {
			upd.PasswordExpiry = attrcache.SetTo(expiry)
		}
	case "sign_up_status":
		var status string
		if status, err = oneOf(key, v, attrcache.SignUpBeforeConfirmation, attrcache.SignUpFinal); err == nil {
			upd.SignUpStatus = attrcache.SetTo(status)
		}
	case "approval_status":
		var status string
		if status, err = oneOf(key, v, attrcache.ApprovalApproved, attrcache.ApprovalRejected, attrcache.ApprovalBeforeDecision); err == nil {
			setApproval(upd, status, by, now)
		}
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

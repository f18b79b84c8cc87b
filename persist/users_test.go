package persist

import (
	"database/sql"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// fullUser returns a user, not stored, with every optional field set.
func fullUser() *attrcache.User {
	u := newUser()
	locked := attrcache.Now().Add(-time.Hour)
	u.Email = ptr("alice@example.com")
	u.DisplayName = ptr("Alice Ünal")
	u.FirstName = ptr("Alice")
	u.MiddleName = ptr("B")
	u.LastName = ptr("Ünal")
	u.IsSuperUser = true
	u.IsLocked = true
	u.LockedTime = &locked
	u.LockedBy = ptr("zusr0000000000000000000000000")
	u.CreationCtx = `{"source":"test"}`
	u.SignUpStatus = attrcache.SignUpBeforeConfirmation
	u.SignUpConfirmTime = &locked
	u.SignUpConfirmToken = "token-" + u.UserID
	u.IsTOTPEnabled = true
	u.TOTPKey = "JBSWY3DPEHPK3PXP"
	u.TOTPLabel = ptr("my phone")
	return u
}

// rawUserColumns returns the stored, unopened values of columns of the user.
func rawUserColumns(t *testing.T, db *DB, userID string, columns ...string) []sql.NullString {
	t.Helper()
	values := make([]sql.NullString, len(columns))
	dest := make([]any, len(columns))
	for i := range values {
		dest[i] = &values[i]
	}
	err := db.SQL().QueryRowContext(t.Context(),
		"SELECT "+strings.Join(columns, ", ")+" FROM sso_user WHERE user_id = ?", userID).Scan(dest...)
	if err != nil {
		t.Fatalf("reading %v of %s: %v", columns, userID, err)
	}
	return values
}

func TestCreateUserAndLookUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		user *attrcache.User
	}{
		{"every field", fullUser()},
		{"no optional field", newUser()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := *tc.user
			want.Version = 1
			u := createUser(t, testDB, tc.user)
			if !reflect.DeepEqual(*u, want) {
				t.Errorf("after CreateUser:\n got %+v\nwant %+v", *u, want)
			}

			lookups := map[string]func() (*attrcache.User, error){
				"UserByID":       func() (*attrcache.User, error) { return testDB.UserByID(t.Context(), want.UserID) },
				"UserByUsername": func() (*attrcache.User, error) { return testDB.UserByUsername(t.Context(), want.Username) },
			}
			if want.SignUpConfirmToken != "" {
				lookups["UserBySignUpToken"] = func() (*attrcache.User, error) {
					return testDB.UserBySignUpToken(t.Context(), want.SignUpConfirmToken)
				}
			}
			for name, lookup := range lookups {
				got, err := lookup()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !reflect.DeepEqual(*got, want) {
					t.Errorf("%s:\n got %+v\nwant %+v", name, *got, want)
				}
			}
		})
	}
}

func TestCreateUserStoresTimesInUTCToTheMicrosecond(t *testing.T) {
	zone := time.FixedZone("UTC+5", 5*3600)
	u := newUser()
	u.PasswordExpiry = time.Date(2030, 1, 2, 3, 4, 5, 123456789, zone)
	createUser(t, testDB, u)

	want := time.Date(2030, 1, 1, 22, 4, 5, 123456000, time.UTC)
	if !u.PasswordExpiry.Equal(want) || u.PasswordExpiry.Location() != time.UTC {
		t.Errorf("PasswordExpiry = %v, want %v", u.PasswordExpiry, want)
	}
}

func TestCreateUserErrors(t *testing.T) {
	taken := createUser(t, testDB, fullUser())
	tests := []struct {
		name   string
		modify func(u *attrcache.User)
		want   error // nil: any error
	}{
		{"taken username", func(u *attrcache.User) { u.Username = taken.Username }, attrcache.ErrConflict},
		{"taken user_id", func(u *attrcache.User) { u.UserID = taken.UserID }, attrcache.ErrConflict},
		{"taken sign-up token", func(u *attrcache.User) { u.SignUpConfirmToken = taken.SignUpConfirmToken }, attrcache.ErrConflict},
		{"zero password expiry", func(u *attrcache.User) { u.PasswordExpiry = time.Time{} }, nil},
		{"zero sign-up time", func(u *attrcache.User) { u.SignUpTime = time.Time{} }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUser()
			tt.modify(u)
			err := testDB.CreateUser(t.Context(), u)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("CreateUser error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && errors.Is(err, attrcache.ErrConflict) {
				t.Errorf("CreateUser error = %v, want an error other than a conflict", err)
			}
			if u.UserID != taken.UserID {
				if _, err := testDB.UserByID(t.Context(), u.UserID); !errors.Is(err, attrcache.ErrNotFound) {
					t.Errorf("UserByID after a failed create: error = %v, want ErrNotFound", err)
				}
			}
		})
	}

	t.Run("users without a sign-up token do not collide", func(t *testing.T) {
		for range 2 {
			createUser(t, testDB, newUser())
		}
	})
}

func TestUserLookupsNotFound(t *testing.T) {
	createUser(t, testDB, newUser()) // a user without a token, which "" must not find
	tests := []struct {
		name   string
		lookup func() (*attrcache.User, error)
	}{
		{"UserByID", func() (*attrcache.User, error) { return testDB.UserByID(t.Context(), attrcache.NewUserID()) }},
		{"UserByUsername", func() (*attrcache.User, error) { return testDB.UserByUsername(t.Context(), "nobody-at-all") }},
		{"UserByUsername other case", func() (*attrcache.User, error) {
			u := createUser(t, testDB, newUser())
			return testDB.UserByUsername(t.Context(), strings.ToUpper(u.Username))
		}},
		{"UserBySignUpToken", func() (*attrcache.User, error) { return testDB.UserBySignUpToken(t.Context(), "no-such-token") }},
		{"UserBySignUpToken empty", func() (*attrcache.User, error) { return testDB.UserBySignUpToken(t.Context(), "") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := tt.lookup()
			if !errors.Is(err, attrcache.ErrNotFound) {
				t.Errorf("got %v, %v; want ErrNotFound", u, err)
			}
		})
	}
}

func TestSecretsAreSealedAtRest(t *testing.T) {
	u := fullUser()
	email, totpKey := *u.Email, u.TOTPKey
	createUser(t, testDB, u)

	raw := rawUserColumns(t, testDB, u.UserID, "email", "totp_key")
	for i, plain := range []string{email, totpKey} {
		if !raw[i].Valid || !attrcache.IsEnvelope(raw[i].String) || strings.Contains(raw[i].String, plain) {
			t.Errorf("stored column %d = %q, want a sealed envelope without the plaintext", i, raw[i].String)
		}
	}
	got, err := testDB.UserByID(t.Context(), u.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email == nil || *got.Email != email || got.TOTPKey != totpKey {
		t.Errorf("read back e-mail %v, TOTP key %q; want %q, %q", got.Email, got.TOTPKey, email, totpKey)
	}

	t.Run("absent values are NULL", func(t *testing.T) {
		u := createUser(t, testDB, newUser())
		raw := rawUserColumns(t, testDB, u.UserID, "email", "totp_key", "sign_up_confirm_token")
		for i, v := range raw {
			if v.Valid {
				t.Errorf("column %d = %q, want NULL", i, v.String)
			}
		}
	})
}

func TestUnopenableSecretIsAnError(t *testing.T) {
	other := createUser(t, testDB, fullUser())
	sealedForOther := rawUserColumns(t, testDB, other.UserID, "email")[0].String

	tests := []struct {
		name, column, value string
	}{
		{"e-mail sealed for another user", "email", sealedForOther},
		{"e-mail not sealed", "email", "alice@example.com"},
		{"TOTP key sealed for another purpose", "totp_key", sealedForOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := createUser(t, testDB, fullUser())
			_, err := testDB.SQL().ExecContext(t.Context(),
				"UPDATE sso_user SET "+tt.column+" = ? WHERE user_id = ?", tt.value, u.UserID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := testDB.UserByID(t.Context(), u.UserID)
			if !errors.Is(err, attrcache.ErrUndecryptable) {
				t.Fatalf("UserByID = %v, %v; want ErrUndecryptable", got, err)
			}
			if strings.Contains(err.Error(), tt.value) {
				t.Errorf("the error %q shows the stored value", err)
			}
		})
	}
}

func TestUpdateUser(t *testing.T) {
	locked := attrcache.Now()
	later := attrcache.Now().Add(24 * time.Hour)
	tests := []struct {
		name  string
		upd   attrcache.UserUpdate
		check func(t *testing.T, before, got *attrcache.User)
		// upper, when set, is the wanted display, first, middle and last *_upper columns.
		upper []*string
	}{
		{
			name:  "nothing set still bumps the version",
			check: func(t *testing.T, before, got *attrcache.User) {},
		},
		{
			name: "username",
			upd:  attrcache.UserUpdate{Username: attrcache.SetTo("renamed-" + attrcache.NewUserID())},
			check: func(t *testing.T, before, got *attrcache.User) {
				if !strings.HasPrefix(got.Username, "renamed-") {
					t.Errorf("Username = %q, want the new one", got.Username)
				}
			},
		},
		{
			name: "names follow their upper columns",
			upd: attrcache.UserUpdate{
				DisplayName: attrcache.SetTo(ptr("Zoë Smith")),
				FirstName:   attrcache.SetTo(ptr("zoë")),
				MiddleName:  attrcache.SetTo[*string](nil),
				LastName:    attrcache.SetTo(ptr("smith")),
			},
			check: func(t *testing.T, before, got *attrcache.User) {
				if got.DisplayName == nil || *got.DisplayName != "Zoë Smith" || got.MiddleName != nil {
					t.Errorf("DisplayName, MiddleName = %v, %v; want Zoë Smith, nil", got.DisplayName, got.MiddleName)
				}
			},
			upper: []*string{ptr("ZOË SMITH"), ptr("ZOË"), nil, ptr("SMITH")},
		},
		{
			name: "e-mail set",
			upd:  attrcache.UserUpdate{Email: attrcache.SetTo(ptr("new@example.com"))},
			check: func(t *testing.T, before, got *attrcache.User) {
				if got.Email == nil || *got.Email != "new@example.com" {
					t.Errorf("Email = %v, want new@example.com", got.Email)
				}
				raw := rawUserColumns(t, testDB, got.UserID, "email")[0]
				if !attrcache.IsEnvelope(raw.String) {
					t.Errorf("stored e-mail %q is not sealed", raw.String)
				}
			},
		},
		{
			name: "e-mail cleared",
			upd:  attrcache.UserUpdate{Email: attrcache.SetTo[*string](nil)},
			check: func(t *testing.T, before, got *attrcache.User) {
				if got.Email != nil {
					t.Errorf("Email = %q, want nil", *got.Email)
				}
			},
		},
		{
			name: "TOTP",
			upd: attrcache.UserUpdate{
				IsTOTPEnabled: attrcache.SetTo(false),
				TOTPKey:       attrcache.SetTo("NEWKEY234567ABCD"),
				TOTPLabel:     attrcache.SetTo[*string](nil),
			},
			check: func(t *testing.T, before, got *attrcache.User) {
				if got.IsTOTPEnabled || got.TOTPKey != "NEWKEY234567ABCD" || got.TOTPLabel != nil {
					t.Errorf("TOTP = %v, %q, %v; want false, NEWKEY234567ABCD, nil", got.IsTOTPEnabled, got.TOTPKey, got.TOTPLabel)
				}
				raw := rawUserColumns(t, testDB, got.UserID, "totp_key")[0]
				if !attrcache.IsEnvelope(raw.String) || strings.Contains(raw.String, "NEWKEY234567ABCD") {
					t.Errorf("stored TOTP key %q is not sealed", raw.String)
				}
			},
		},
		{
			name: "unlock",
			upd: attrcache.UserUpdate{
				IsLocked:   attrcache.SetTo(false),
				LockedTime: attrcache.SetTo[*time.Time](nil),
				LockedBy:   attrcache.SetTo[*string](nil),
			},
			check: func(t *testing.T, before, got *attrcache.User) {
				if got.IsLocked || got.LockedTime != nil || got.LockedBy != nil {
					t.Errorf("lock = %v, %v, %v; want false, nil, nil", got.IsLocked, got.LockedTime, got.LockedBy)
				}
			},
		},
		{
			name: "lock",
			upd: attrcache.UserUpdate{
				IsLocked:   attrcache.SetTo(true),
				LockedTime: attrcache.SetTo(&locked),
				LockedBy:   attrcache.SetTo(ptr("zusradmin")),
			},
			check: func(t *testing.T, before, got *attrcache.User) {
				if !got.IsLocked || got.LockedTime == nil || !got.LockedTime.Equal(locked) || got.LockedBy == nil {
					t.Errorf("lock = %v, %v, %v; want true, %v, zusradmin", got.IsLocked, got.LockedTime, got.LockedBy, locked)
				}
			},
		},
		{
			name: "password",
			upd: attrcache.UserUpdate{
				PasswordHash:       attrcache.SetTo("$argon2id$new"),
				PasswordIsSet:      attrcache.SetTo(true),
				PasswordMustChange: attrcache.SetTo(true),
				PasswordLastSet:    attrcache.SetTo(locked),
				PasswordExpiry:     attrcache.SetTo(later),
			},
			check: func(t *testing.T, before, got *attrcache.User) {
				if got.PasswordHash != "$argon2id$new" || !got.PasswordMustChange ||
					!got.PasswordLastSet.Equal(locked) || !got.PasswordExpiry.Equal(later) {
					t.Errorf("password fields = %q, %v, %v, %v", got.PasswordHash, got.PasswordMustChange, got.PasswordLastSet, got.PasswordExpiry)
				}
			},
		},
		{
			name: "sign-up and approval",
			upd: attrcache.UserUpdate{
				SignUpStatus:          attrcache.SetTo(attrcache.SignUpFinal),
				SignUpConfirmTime:     attrcache.SetTo(&locked),
				ApprovalStatus:        attrcache.SetTo(attrcache.ApprovalRejected),
				ApprovalStatusModBy:   attrcache.SetTo("zusradmin"),
				ApprovalStatusModTime: attrcache.SetTo(later),
			},
			check: func(t *testing.T, before, got *attrcache.User) {
				if got.SignUpStatus != attrcache.SignUpFinal || got.SignUpConfirmTime == nil ||
					got.ApprovalStatus != attrcache.ApprovalRejected || got.ApprovalStatusModBy != "zusradmin" ||
					!got.ApprovalStatusModTime.Equal(later) {
					t.Errorf("sign-up and approval = %q, %v, %q, %q, %v", got.SignUpStatus, got.SignUpConfirmTime,
						got.ApprovalStatus, got.ApprovalStatusModBy, got.ApprovalStatusModTime)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := createUser(t, testDB, fullUser())
			got, err := testDB.UpdateUser(t.Context(), before.UserID, tt.upd)
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			if got.Version != before.Version+1 {
				t.Errorf("Version = %d, want %d", got.Version, before.Version+1)
			}
			tt.check(t, before, got)
			if tt.upper != nil {
				raw := rawUserColumns(t, testDB, got.UserID,
					"display_name_upper", "first_name_upper", "middle_name_upper", "last_name_upper")
				for i, want := range tt.upper {
					if (want == nil) != !raw[i].Valid || (want != nil && raw[i].String != *want) {
						t.Errorf("upper column %d = %v, want %v", i, raw[i], want)
					}
				}
			}
			stored, err := testDB.UserByID(t.Context(), before.UserID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stored, got) {
				t.Errorf("UpdateUser returned\n%+v\nbut the stored user is\n%+v", got, stored)
			}
		})
	}
}

func TestUpdateUserErrors(t *testing.T) {
	t.Run("unknown user", func(t *testing.T) {
		_, err := testDB.UpdateUser(t.Context(), attrcache.NewUserID(), attrcache.UserUpdate{IsLocked: attrcache.SetTo(true)})
		if !errors.Is(err, attrcache.ErrNotFound) {
			t.Errorf("error = %v, want ErrNotFound", err)
		}
	})
	t.Run("taken username", func(t *testing.T) {
		taken := createUser(t, testDB, newUser())
		u := createUser(t, testDB, newUser())
		_, err := testDB.UpdateUser(t.Context(), u.UserID, attrcache.UserUpdate{
			DisplayName: attrcache.SetTo(ptr("changed")),
			Username:    attrcache.SetTo(taken.Username),
		})
		if !errors.Is(err, attrcache.ErrConflict) {
			t.Fatalf("error = %v, want ErrConflict", err)
		}
		stored, err := testDB.UserByID(t.Context(), u.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(stored, u) {
			t.Errorf("after a failed update the user is\n%+v\nwant it unchanged\n%+v", stored, u)
		}
	})
	for _, tc := range []struct {
		name string
		upd  attrcache.UserUpdate
	}{
		{"zero password expiry", attrcache.UserUpdate{PasswordExpiry: attrcache.SetTo(time.Time{})}},
		{"first name too long", attrcache.UserUpdate{FirstName: attrcache.SetTo(ptr(strings.Repeat("n", 192)))}},
		{"username too long", attrcache.UserUpdate{Username: attrcache.SetTo(strings.Repeat("u", 192))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := createUser(t, testDB, newUser())
			_, err := testDB.UpdateUser(t.Context(), u.UserID, tc.upd)
			if got := attrcache.AsError(err); got.Code != attrcache.CodeInvalidInput || got.Kind != attrcache.KindDenied {
				t.Errorf("error = %v, want a denied E008002 input error", err)
			}
		})
	}
}

func TestDeleteUser(t *testing.T) {
	kept := createUser(t, testDB, newUser())
	keptSession := createSession(t, testDB, newSession(kept.UserID, attrcache.Now().Add(time.Hour)))
	insertAttr(t, testDB, kept.UserID, "", "kept")

	u := createUser(t, testDB, newUser())
	s := createSession(t, testDB, newSession(u.UserID, attrcache.Now().Add(time.Hour)))
	insertAttr(t, testDB, u.UserID, "", "user-attr")
	insertAttr(t, testDB, u.UserID, s.Hash, "session-attr")

	removed, err := testDB.DeleteUser(t.Context(), u.UserID)
	if err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	want := []attrcache.AttrKey{
		{Scope: attrcache.AttrScope{UserID: u.UserID}, Name: "user-attr"},
		{Scope: attrcache.AttrScope{UserID: u.UserID, Session: s.Hash}, Name: "session-attr"},
	}
	sortKeys := func(a, b attrcache.AttrKey) int {
		return strings.Compare(string(a.Scope.Session)+"/"+a.Name, string(b.Scope.Session)+"/"+b.Name)
	}
	slices.SortFunc(removed, sortKeys)
	slices.SortFunc(want, sortKeys)
	if !slices.Equal(removed, want) {
		t.Errorf("DeleteUser returned the keys %v, want those of the attributes it removed, %v", removed, want)
	}
	if _, err := testDB.UserByID(t.Context(), u.UserID); !errors.Is(err, attrcache.ErrNotFound) {
		t.Errorf("UserByID after delete: error = %v, want ErrNotFound", err)
	}
	if _, err := testDB.Session(t.Context(), u.UserID, s.Hash); !errors.Is(err, attrcache.ErrNotFound) {
		t.Errorf("Session after deleting its user: error = %v, want ErrNotFound", err)
	}
	for _, hash := range []attrcache.SessionHash{"", s.Hash} {
		if names := attrNames(t, testDB, u.UserID, hash); len(names) != 0 {
			t.Errorf("attributes %v of scope %q outlived their user", names, hash)
		}
	}

	if _, err := testDB.Session(t.Context(), kept.UserID, keptSession.Hash); err != nil {
		t.Errorf("another user's session: %v", err)
	}
	if names := attrNames(t, testDB, kept.UserID, ""); len(names) != 1 {
		t.Errorf("another user's attributes = %v, want [kept]", names)
	}

	if _, err := testDB.DeleteUser(t.Context(), u.UserID); !errors.Is(err, attrcache.ErrNotFound) {
		t.Errorf("DeleteUser of an unknown user: error = %v, want ErrNotFound", err)
	}
}

package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

const (
	pathUser     = "/zato/sso/user"
	pathPassword = "/zato/sso/user/password"
	pathTOTP     = "/zato/sso/user/totp"
	pathSearch   = "/zato/sso/user/search"
	pathSignup   = "/zato/sso/user/signup"
)

// The keys of a user object in each shape.
const (
	regularUserKeys = "display_name email first_name is_totp_enabled last_name middle_name totp_label username"
	fullUserKeys    = "approval_status approval_status_mod_by approval_status_mod_time creation_ctx " +
		"display_name email first_name is_active is_approval_needed is_internal is_locked " +
		"is_super_user is_totp_enabled last_name locked_by locked_time middle_name password_expiry " +
		"password_is_set password_last_set password_must_change sign_up_status sign_up_time " +
		"totp_label user_id username"
	createdUserKeys = "approval_status approval_status_mod_by approval_status_mod_time " +
		"display_name email first_name is_active is_approval_needed is_internal is_locked " +
		"is_super_user is_totp_enabled last_name middle_name password_expiry password_is_set " +
		"password_last_set password_must_change sign_up_status sign_up_time totp_label user_id username"
)

// createUserOverHTTP creates a user through POST /zato/sso/user as the super-user (so it waits
// for approval) and returns its username.
func createUserOverHTTP(t *testing.T, input map[string]any) string {
	t.Helper()
	username := uniqueName("http")
	in := withCaller(admin, map[string]any{"username": username})
	for k, v := range input {
		in[k] = v
	}
	res := do(t, http.MethodPost, pathUser, in)
	wantOK(t, res)
	return username
}

// getUserByID returns the user as the super-user sees it.
func getUserByID(t *testing.T, userID string) map[string]any {
	t.Helper()
	res := do(t, http.MethodGet, pathUser, withCaller(admin, map[string]any{"user_id": userID}))
	wantOK(t, res)
	return res.body
}

func TestGetUser(t *testing.T) {
	regular := newUser(t, false, nil)
	tests := []struct {
		name       string
		input      map[string]any
		wantStatus int
		wantCode   string
		wantKeys   string
		wantUser   string // username
	}{
		{"regular user, self", withCaller(regular, nil), 200, "", withEnvelope(regularUserKeys), regular.username},
		{"super-user, self", withCaller(admin, nil), 200, "", withEnvelope(fullUserKeys), admin.username},
		{"super-user, by id", withCaller(admin, map[string]any{"user_id": regular.id}), 200, "", withEnvelope(fullUserKeys), regular.username},
		{"regular user, by id", withCaller(regular, map[string]any{"user_id": admin.id}), 403, attrcache.CodeNotAllowed, "", ""},
		{"unknown id", withCaller(admin, map[string]any{"user_id": attrcache.NewUserID()}), 403, attrcache.CodeNotAllowed, "", ""},
		{"garbage UST", map[string]any{"ust": "garbage", "current_app": app}, 403, attrcache.CodeNoSuchSession, "", ""},
		{"UST missing", map[string]any{"current_app": app}, 400, attrcache.CodeMissingInput, "", ""},
		{"unknown app", map[string]any{"ust": regular.ust, "current_app": "NoSuchApp"}, 200, attrcache.CodeAppInvalid, "", ""},
		{"user_id not a string", withCaller(admin, map[string]any{"user_id": 7}), 400, attrcache.CodeInvalidInput, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, http.MethodGet, pathUser, tt.input)
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
				return
			}
			wantOK(t, res)
			if got := keysOf(res.body); got != tt.wantKeys {
				t.Errorf("keys = %s\nwant %s", got, tt.wantKeys)
			}
			if got := res.body["username"]; got != tt.wantUser {
				t.Errorf("username = %v, want %s", got, tt.wantUser)
			}
			if got, ok := res.body["is_totp_enabled"].(bool); !ok || got {
				t.Errorf("is_totp_enabled = %#v, want JSON false", res.body["is_totp_enabled"])
			}
			if got := res.body["totp_label"]; got != "" {
				t.Errorf("totp_label = %#v, want \"\" for the default label", got)
			}
		})
	}
}

func TestGetUserFullFields(t *testing.T) {
	regular := newUser(t, false, nil)
	body := getUserByID(t, regular.id)
	want := map[string]any{
		"user_id":            regular.id,
		"is_super_user":      false,
		"is_active":          true,
		"is_internal":        false,
		"is_locked":          false,
		"is_approval_needed": false,
		"approval_status":    attrcache.ApprovalApproved,
		"sign_up_status":     attrcache.SignUpFinal,
		"locked_time":        nil,
		"locked_by":          nil,
		"email":              nil,
		"display_name":       nil,
	}
	for key, value := range want {
		if got, ok := body[key]; !ok || got != value {
			t.Errorf("%s = %#v (present %v), want %#v", key, got, ok, value)
		}
	}
	for _, key := range []string{"password_expiry", "password_last_set", "sign_up_time", "approval_status_mod_time"} {
		if _, err := attrcache.ParseTime(body[key].(string)); err != nil {
			t.Errorf("%s = %v: %v", key, body[key], err)
		}
	}
}

func TestCreateUser(t *testing.T) {
	regular := newUser(t, false, nil)
	taken := newUser(t, false, nil)
	tests := []struct {
		name       string
		caller     testUser
		input      map[string]any
		wantStatus int
		wantCode   string
		want       map[string]any // expected values in the reply
		wantKeys   string
	}{
		{
			name:   "with e-mail",
			caller: admin,
			input:  map[string]any{"username": uniqueName("c"), "email": "not-checked", "first_name": "Ada", "last_name": "Lovelace"},
			want: map[string]any{"email": "not-checked", "display_name": "Ada Lovelace", "approval_status": attrcache.ApprovalBeforeDecision,
				"is_approval_needed": true, "is_super_user": false, "is_locked": false, "middle_name": nil},
			wantKeys: withEnvelope(createdUserKeys),
		},
		{
			name:     "without e-mail, auto-approved",
			caller:   admin,
			input:    map[string]any{"username": uniqueName("c"), "auto_approve": true, "is_locked": true},
			want:     map[string]any{"approval_status": attrcache.ApprovalApproved, "is_approval_needed": false, "is_locked": true},
			wantKeys: withEnvelope(strings.Replace(createdUserKeys, "email ", "", 1)),
		},
		{
			name:     "booleans from strings",
			caller:   admin,
			input:    map[string]any{"username": uniqueName("c"), "password_must_change": "true", "is_totp_enabled": "1"},
			want:     map[string]any{"password_must_change": true, "is_totp_enabled": true},
			wantKeys: withEnvelope(strings.Replace(createdUserKeys, "email ", "", 1)),
		},
		{name: "username taken", caller: admin, input: map[string]any{"username": taken.username}, wantStatus: 403, wantCode: attrcache.CodeUsernameExists},
		{name: "username missing", caller: admin, input: map[string]any{}, wantStatus: 403, wantCode: attrcache.CodeUsernameInvalid},
		{name: "regular caller", caller: regular, input: map[string]any{"username": uniqueName("c")}, wantStatus: 403, wantCode: attrcache.CodeNotAllowed},
		{name: "password too short", caller: admin, input: map[string]any{"username": uniqueName("c"), "password": "short"}, wantStatus: 403, wantCode: attrcache.CodePasswordTooShort},
		{name: "is_locked not a boolean", caller: admin, input: map[string]any{"username": uniqueName("c"), "is_locked": "maybe"}, wantStatus: 400, wantCode: attrcache.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, http.MethodPost, pathUser, withCaller(tt.caller, tt.input))
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
				return
			}
			wantOK(t, res)
			if got := keysOf(res.body); got != tt.wantKeys {
				t.Errorf("keys = %s\nwant %s", got, tt.wantKeys)
			}
			for key, value := range tt.want {
				if got := res.body[key]; got != value {
					t.Errorf("%s = %#v, want %#v", key, got, value)
				}
			}
			if id, _ := res.body["user_id"].(string); !attrcache.ValidUserID(id) {
				t.Errorf("user_id = %q, want a zusr id", id)
			}
		})
	}
}

func TestUpdateUser(t *testing.T) {
	tests := []struct {
		name       string
		superUser  bool                                 // the caller updates another user by user_id
		body       func(target testUser) map[string]any // the update keys (caller keys added)
		query      string
		wantStatus int
		wantCode   string
		want       map[string]any // the target's fields afterwards
	}{
		{
			name: "regular fields",
			body: func(testUser) map[string]any {
				return map[string]any{"display_name": "Display", "first_name": "First", "email": "e@example.com"}
			},
			want: map[string]any{"display_name": "Display", "first_name": "First", "email": "e@example.com", "middle_name": "Middle"},
		},
		{
			name: "null clears, absent keeps",
			body: func(testUser) map[string]any { return map[string]any{"middle_name": nil} },
			want: map[string]any{"middle_name": nil, "last_name": "Last"},
		},
		{
			name: "unknown keys ignored",
			body: func(testUser) map[string]any {
				return map[string]any{"last_name": "Other", "is_approved": true, "rate_limit_def": "x", "password": "ignored-pass-1"}
			},
			want: map[string]any{"last_name": "Other"},
		},
		{
			name: "query string wins over the body",
			body: func(testUser) map[string]any {
				return map[string]any{"first_name": "FromBody", "display_name": "FromBody"}
			},
			query: "?last_name=FromQuery&first_name=FromQuery",
			want:  map[string]any{"first_name": "FromQuery", "last_name": "FromQuery", "display_name": "FromBody"},
		},
		{
			name:      "super-user fields by user_id",
			superUser: true,
			body: func(target testUser) map[string]any {
				return map[string]any{"user_id": target.id, "is_locked": true, "password_must_change": true}
			},
			want: map[string]any{"is_locked": true, "password_must_change": true},
		},
		{
			name:       "super-user field from a regular user",
			body:       func(testUser) map[string]any { return map[string]any{"is_locked": true} },
			wantStatus: 403, wantCode: attrcache.CodeInvalidInput,
			want: map[string]any{"is_locked": false},
		},
		{
			name: "another user's user_id from a regular user",
			body: func(testUser) map[string]any {
				return map[string]any{"user_id": admin.id, "display_name": "Hijack"}
			},
			wantStatus: 403, wantCode: attrcache.CodeInvalidInput,
		},
		{
			name:       "no allowed key",
			body:       func(testUser) map[string]any { return map[string]any{"is_approved": true} },
			wantStatus: 403, wantCode: attrcache.CodeMissingInput,
		},
		{
			name:       "username taken",
			body:       func(testUser) map[string]any { return map[string]any{"username": admin.username} },
			wantStatus: 403, wantCode: attrcache.CodeUsernameExists,
		},
		{
			name:       "username null",
			body:       func(testUser) map[string]any { return map[string]any{"username": nil} },
			wantStatus: 403, wantCode: attrcache.CodeInvalidInput,
		},
		{
			name:       "user_id not a string",
			body:       func(testUser) map[string]any { return map[string]any{"user_id": 1, "first_name": "X"} },
			wantStatus: 400, wantCode: attrcache.CodeInvalidInput,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			middle, last := "Middle", "Last"
			target := newUser(t, false, func(in *sso.CreateUserInput) { in.MiddleName, in.LastName = &middle, &last })
			caller := target
			if tt.superUser {
				caller = admin
			}
			res := serve(handler, call{method: http.MethodPatch, path: pathUser + tt.query, body: jsonOf(withCaller(caller, tt.body(target)))})
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
			} else {
				wantOK(t, res)
				if got := keysOf(res.body); got != "cid status sub_status" {
					t.Errorf("reply keys = %s, want the envelope alone", got)
				}
			}
			after := getUserByID(t, target.id)
			for key, value := range tt.want {
				if got := after[key]; got != value {
					t.Errorf("after: %s = %#v, want %#v", key, got, value)
				}
			}
		})
	}
}

func TestDeleteUser(t *testing.T) {
	regular := newUser(t, false, nil)
	tests := []struct {
		name       string
		caller     testUser
		target     func(t *testing.T) string // user_id
		wantStatus int
		wantCode   string
	}{
		{"by super-user", admin, approvedUser, 200, ""},
		{"self", admin, func(*testing.T) string { return admin.id }, 403, attrcache.CodeInvalidOperation},
		{"unknown user", admin, func(*testing.T) string { return attrcache.NewUserID() }, 403, attrcache.CodeInvalidOperation},
		{"by regular user", regular, approvedUser, 403, attrcache.CodeNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			userID := tt.target(t)
			res := do(t, http.MethodDelete, pathUser, withCaller(tt.caller, map[string]any{"user_id": userID}))
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
				return
			}
			wantOK(t, res)
			wantError(t, do(t, http.MethodGet, pathUser, withCaller(admin, map[string]any{"user_id": userID})), 403, attrcache.CodeNotAllowed)
		})
	}
	t.Run("user_id missing", func(t *testing.T) {
		wantError(t, do(t, http.MethodDelete, pathUser, withCaller(admin, nil)), 400, attrcache.CodeMissingInput)
	})
}

func TestChangePassword(t *testing.T) {
	const newPassword = "a-new-pass-word"
	tests := []struct {
		name       string
		superUser  bool // the super-user changes the target's password
		input      func(target testUser) map[string]any
		wantStatus int
		wantCode   string
		wantLogin  string // the code a login with newPassword then answers ("" ok)
	}{
		{
			name: "own, with the old password",
			input: func(u testUser) map[string]any {
				return map[string]any{"old_password": u.password, "new_password": newPassword}
			},
		},
		{
			name: "own, wrong old password",
			input: func(testUser) map[string]any {
				return map[string]any{"old_password": "wrong-old-pass", "new_password": newPassword}
			},
			wantStatus: 403, wantCode: attrcache.CodeNotAllowed, wantLogin: attrcache.CodeNotAllowed,
		},
		{
			name: "own, new password against the policy",
			input: func(u testUser) map[string]any {
				return map[string]any{"old_password": u.password, "new_password": "short"}
			},
			wantStatus: 403, wantCode: attrcache.CodeNotAllowed, wantLogin: attrcache.CodeNotAllowed,
		},
		{
			name:       "another user's, from a regular user",
			input:      func(testUser) map[string]any { return map[string]any{"user_id": admin.id, "new_password": newPassword} },
			wantStatus: 403, wantCode: attrcache.CodeInvalidInput, wantLogin: attrcache.CodeNotAllowed,
		},
		{
			name:      "by the super-user, no old password",
			superUser: true,
			input: func(u testUser) map[string]any {
				return map[string]any{"user_id": u.id, "new_password": newPassword, "password_expiry": "90"}
			},
		},
		{
			name:       "by the super-user, against the policy",
			superUser:  true,
			input:      func(u testUser) map[string]any { return map[string]any{"user_id": u.id, "new_password": "short"} },
			wantStatus: 403, wantCode: attrcache.CodePasswordTooShort, wantLogin: attrcache.CodeNotAllowed,
		},
		{
			name:      "by the super-user, must change",
			superUser: true,
			input: func(u testUser) map[string]any {
				return map[string]any{"user_id": u.id, "new_password": newPassword, "must_change": true}
			},
			wantLogin: attrcache.CodePasswordMustSendNew,
		},
		{
			name:       "new password missing",
			input:      func(u testUser) map[string]any { return map[string]any{"old_password": u.password} },
			wantStatus: 400, wantCode: attrcache.CodeMissingInput, wantLogin: attrcache.CodeNotAllowed,
		},
		{
			name: "password_expiry not an integer",
			input: func(u testUser) map[string]any {
				return map[string]any{"old_password": u.password, "new_password": newPassword, "password_expiry": "soon"}
			},
			wantStatus: 400, wantCode: attrcache.CodeInvalidInput, wantLogin: attrcache.CodeNotAllowed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := newUser(t, false, nil)
			caller := target
			if tt.superUser {
				caller = admin
			}
			res := do(t, http.MethodPatch, pathPassword, withCaller(caller, tt.input(target)))
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
			} else {
				wantOK(t, res)
			}
			login := do(t, http.MethodPost, pathLogin, map[string]any{"username": target.username, "password": newPassword, "current_app": app})
			if tt.wantLogin == "" {
				wantOK(t, login)
			} else {
				wantError(t, login, http.StatusForbidden, tt.wantLogin)
			}
		})
	}
}

func TestUserActions(t *testing.T) {
	regular := newUser(t, false, nil)
	tests := []struct {
		name       string
		method     string
		path       string
		caller     testUser
		target     func(t *testing.T) string // user_id
		wantStatus int
		wantCode   string
		want       map[string]any // the target afterwards
	}{
		{"approve", http.MethodPost, "/zato/sso/user/approve", admin, pendingUser, 200, "",
			map[string]any{"approval_status": attrcache.ApprovalApproved, "approval_status_mod_by": admin.id}},
		{"reject", http.MethodPost, "/zato/sso/user/reject", admin, pendingUser, 200, "",
			map[string]any{"approval_status": attrcache.ApprovalRejected, "is_approval_needed": true}},
		{"lock", http.MethodPost, "/zato/sso/user/lock", admin, approvedUser, 200, "",
			map[string]any{"is_locked": true, "locked_by": admin.id}},
		{"unlock", http.MethodDelete, "/zato/sso/user/lock", admin, lockedUser, 200, "",
			map[string]any{"is_locked": false}},
		{"approve by a regular user", http.MethodPost, "/zato/sso/user/approve", regular, pendingUser, 403, attrcache.CodeInvalidInput,
			map[string]any{"approval_status": attrcache.ApprovalBeforeDecision}},
		{"lock by a regular user", http.MethodPost, "/zato/sso/user/lock", regular, approvedUser, 403, attrcache.CodeNotAllowed,
			map[string]any{"is_locked": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			userID := tt.target(t)
			res := do(t, tt.method, tt.path, withCaller(tt.caller, map[string]any{"user_id": userID}))
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
			} else {
				wantOK(t, res)
			}
			after := getUserByID(t, userID)
			for key, value := range tt.want {
				if got := after[key]; got != value {
					t.Errorf("after: %s = %#v, want %#v", key, got, value)
				}
			}
		})
	}
	for _, path := range []string{"/zato/sso/user/approve", "/zato/sso/user/reject", "/zato/sso/user/lock"} {
		t.Run(path+" without user_id", func(t *testing.T) {
			wantError(t, do(t, http.MethodPost, path, withCaller(admin, nil)), 400, attrcache.CodeMissingInput)
		})
	}
}

// pendingUser returns the user_id of a new user waiting for approval.
func pendingUser(t *testing.T) string {
	t.Helper()
	res := do(t, http.MethodPost, pathUser, withCaller(admin, map[string]any{"username": uniqueName("pending")}))
	wantOK(t, res)
	return res.body["user_id"].(string)
}

func approvedUser(t *testing.T) string { return newUser(t, false, nil).id }

func lockedUser(t *testing.T) string {
	return newUser(t, false, func(in *sso.CreateUserInput) { in.IsLocked = true }).id
}

func TestLockEndsSessions(t *testing.T) {
	u := newUser(t, false, nil)
	wantOK(t, do(t, http.MethodGet, pathUser, withCaller(u, nil)))
	wantOK(t, do(t, http.MethodPost, "/zato/sso/user/lock", withCaller(admin, map[string]any{"user_id": u.id})))
	res := do(t, http.MethodGet, pathUser, withCaller(u, nil))
	if res.status != http.StatusForbidden {
		t.Fatalf("GET /zato/sso/user with a locked user's UST: HTTP %d %s, want 403", res.status, res.raw)
	}
}

func TestResetTOTPKey(t *testing.T) {
	const givenKey = "JBSWY3DPEHPK3PXP"
	tests := []struct {
		name       string
		superUser  bool
		input      func(target testUser) map[string]any
		wantStatus int
		wantCode   string
		wantKey    string // "" accepts any valid key
	}{
		{name: "own, generated", input: func(testUser) map[string]any { return map[string]any{"totp_key": "", "totp_label": "phone"} }},
		{name: "own, given", input: func(testUser) map[string]any { return map[string]any{"totp_key": givenKey, "totp_label": nil} }, wantKey: givenKey},
		{
			name: "own user_id from a regular user",
			input: func(u testUser) map[string]any {
				return map[string]any{"user_id": u.id, "totp_key": "", "totp_label": ""}
			},
			wantStatus: 403, wantCode: attrcache.CodeInvalidInput,
		},
		{
			name:      "another user's, by the super-user",
			superUser: true,
			input: func(u testUser) map[string]any {
				return map[string]any{"user_id": u.id, "totp_key": givenKey, "totp_label": "x"}
			},
			wantKey: givenKey,
		},
		{
			name:       "totp_key missing",
			input:      func(testUser) map[string]any { return map[string]any{"totp_label": "x"} },
			wantStatus: 400, wantCode: attrcache.CodeMissingInput,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := newUser(t, false, nil)
			caller := target
			if tt.superUser {
				caller = admin
			}
			res := do(t, http.MethodPatch, pathTOTP, withCaller(caller, tt.input(target)))
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
				return
			}
			wantOK(t, res)
			key, _ := res.body["totp_key"].(string)
			if _, err := attrcache.DecodeTOTPKey(key); err != nil {
				t.Fatalf("totp_key = %q: %v", key, err)
			}
			if tt.wantKey != "" && !strings.EqualFold(key, tt.wantKey) {
				t.Fatalf("totp_key = %q, want %q", key, tt.wantKey)
			}
		})
	}
}

func TestSearch(t *testing.T) {
	regular := newUser(t, false, nil)
	tests := []struct {
		name       string
		caller     testUser
		input      map[string]any
		query      string
		wantStatus int
		wantCode   string
		wantTotal  float64
	}{
		{name: "by username", caller: admin, input: map[string]any{"username": regular.username}, wantTotal: 1},
		{name: "by user_id, paging from the query string", caller: admin, input: map[string]any{"user_id": regular.id}, query: "?paginate=true&page_size=10&cur_page=1", wantTotal: 1},
		{name: "no match", caller: admin, input: map[string]any{"username": "no-such-user"}, wantTotal: 0},
		{name: "regular caller", caller: regular, input: map[string]any{}, wantStatus: 403, wantCode: attrcache.CodeNotAllowed},
		{name: "page_size not an integer", caller: admin, input: map[string]any{"page_size": "ten"}, wantStatus: 400, wantCode: attrcache.CodeInvalidInput},
		{name: "paginate not a boolean", caller: admin, input: map[string]any{"paginate": []any{}}, wantStatus: 400, wantCode: attrcache.CodeInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(handler, call{method: http.MethodGet, path: pathSearch + tt.query, body: jsonOf(withCaller(tt.caller, tt.input))})
			if tt.wantCode != "" {
				wantError(t, res, tt.wantStatus, tt.wantCode)
				return
			}
			wantOK(t, res)
			const wantKeys = "cid cur_page has_next_page has_prev_page next_page num_pages page_size prev_page result status sub_status total"
			if got := keysOf(res.body); got != wantKeys {
				t.Fatalf("keys = %s\nwant %s", got, wantKeys)
			}
			if got := res.body["total"]; got != tt.wantTotal {
				t.Fatalf("total = %v, want %v", got, tt.wantTotal)
			}
			result, _ := res.body["result"].([]any)
			if len(result) != int(tt.wantTotal) {
				t.Fatalf("result has %d users, want %v", len(result), tt.wantTotal)
			}
			for _, item := range result {
				user := item.(map[string]any)
				if got := keysOf(user); got != fullUserKeys {
					t.Fatalf("user keys = %s\nwant %s", got, fullUserKeys)
				}
				if user["username"] != regular.username {
					t.Fatalf("username = %v, want %s", user["username"], regular.username)
				}
			}
		})
	}
}

func TestSignup(t *testing.T) {
	signup := func(t *testing.T, input map[string]any) *response {
		t.Helper()
		return do(t, http.MethodPost, pathSignup, input)
	}
	newSignup := func() map[string]any {
		return map[string]any{"username": uniqueName("signup"), "password": "signup-pass-1", "current_app": signupApp,
			"app_list": []any{signupApp}, "email": "someone"}
	}

	t.Run("sign up and confirm", func(t *testing.T) {
		res := signup(t, newSignup())
		wantOK(t, res)
		token, _ := res.body["confirm_token"].(string)
		if token == "" {
			t.Fatalf("got %s, want a confirm_token", res.raw)
		}
		confirm := map[string]any{"confirm_token": token, "current_app": signupApp}
		wantOK(t, do(t, http.MethodPatch, pathSignup, confirm))
		wantError(t, do(t, http.MethodPatch, pathSignup, confirm), 403, attrcache.CodeSignupConfirmed)
	})

	tests := []struct {
		name       string
		method     string
		input      func() map[string]any
		wantStatus int
		wantCode   string
	}{
		{"app may not sign up", http.MethodPost, func() map[string]any {
			in := newSignup()
			in["current_app"] = otherApp
			return in
		}, 403, attrcache.CodeAppNoSignup},
		{"username missing", http.MethodPost, func() map[string]any {
			in := newSignup()
			delete(in, "username")
			return in
		}, 400, attrcache.CodeMissingInput},
		{"app_list not a list of strings", http.MethodPost, func() map[string]any {
			in := newSignup()
			in["app_list"] = []any{1}
			return in
		}, 400, attrcache.CodeInvalidInput},
		{"unknown token", http.MethodPatch, func() map[string]any {
			return map[string]any{"confirm_token": "no-such-token", "current_app": signupApp}
		}, 403, attrcache.CodeNoSuchSignupToken},
		{"token missing", http.MethodPatch, func() map[string]any { return map[string]any{"current_app": signupApp} }, 400, attrcache.CodeMissingInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, do(t, tt.method, pathSignup, tt.input()), tt.wantStatus, tt.wantCode)
		})
	}
}

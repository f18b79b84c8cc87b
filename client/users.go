package client

import (
	"context"
	"net/http"
	"time"
)

// Zato SSO's paths (zato-sso-reference.md §2).
const (
	pathLogin             = "/zato/sso/user/login"
	pathLogout            = "/zato/sso/user/logout"
	pathUser              = "/zato/sso/user"
	pathPassword          = "/zato/sso/user/password"
	pathApprove           = "/zato/sso/user/approve"
	pathReject            = "/zato/sso/user/reject"
	pathLock              = "/zato/sso/user/lock"
	pathTOTP              = "/zato/sso/user/totp"
	pathSearch            = "/zato/sso/user/search"
	pathSignup            = "/zato/sso/user/signup"
	pathSession           = "/zato/sso/user/session"
	pathSessionList       = "/zato/sso/user/session/list"
	pathUserAttr          = "/zato/sso/user/attr"
	pathUserAttrExists    = "/zato/sso/user/attr/exists"
	pathUserAttrNames     = "/zato/sso/user/attr/names"
	pathSessionAttr       = "/zato/sso/session/attr"
	pathSessionAttrExists = "/zato/sso/session/attr/exists"
	pathSessionAttrNames  = "/zato/sso/session/attr/names"
)

// Credentials are the input of a login.
type Credentials struct {
	Username, Password string
	TOTPCode           string // when the user has TOTP enabled
	NewPassword        string // when the user must change their password
	// RemoteAddr and UserAgent, when set, are what the session records instead of the
	// request's own (for a service that logs its users in on their behalf).
	RemoteAddr, UserAgent string
}

// Session is a logged-in caller: the calls a UST authenticates. It holds no state beyond its
// UST and is safe for concurrent use.
type Session struct {
	c   *Client
	UST string
	// Warnings are the codes of a login that succeeded with status "warning": W003005 when the
	// password is about to expire ([CodePasswordAboutToExpire]).
	Warnings []Code
}

// Session returns the session of a UST obtained elsewhere.
func (c *Client) Session(ust string) *Session { return &Session{c: c, UST: ust} }

// Login opens a session. A login that succeeds with a warning returns the session with its
// Warnings set and a nil error. It is never retried.
func (c *Client) Login(ctx context.Context, cr Credentials) (*Session, error) {
	in := c.input("")
	in["username"], in["password"] = cr.Username, cr.Password
	setIf(in, "totp_code", cr.TOTPCode)
	setIf(in, "new_password", cr.NewPassword)
	setIf(in, "remote_addr", cr.RemoteAddr)
	setIf(in, "user_agent", cr.UserAgent)
	var answer struct {
		UST string `json:"ust"`
	}
	env, err := c.do(ctx, call{method: http.MethodPost, path: pathLogin, input: in}, &answer)
	if err != nil {
		return nil, err
	}
	s := &Session{c: c, UST: answer.UST}
	if env.Status == "warning" {
		for _, code := range env.SubStatus {
			s.Warnings = append(s.Warnings, Code(code))
		}
	}
	return s, nil
}

// Signup signs a user up (where current_app allows it) and returns the token that confirms it.
func (c *Client) Signup(ctx context.Context, username, password, email string, apps []string) (string, error) {
	in := c.input("")
	in["username"], in["password"] = username, password
	setIf(in, "email", email)
	if apps != nil {
		in["app_list"] = apps
	}
	var answer struct {
		ConfirmToken string `json:"confirm_token"`
	}
	_, err := c.do(ctx, call{method: http.MethodPost, path: pathSignup, input: in}, &answer)
	return answer.ConfirmToken, err
}

// ConfirmSignup confirms a sign-up with its token.
func (c *Client) ConfirmSignup(ctx context.Context, token string) error {
	in := c.input("")
	in["confirm_token"] = token
	_, err := c.do(ctx, call{method: http.MethodPatch, path: pathSignup, input: in}, nil)
	return err
}

// Logout ends the session; the server answers ok whatever the UST. It is never retried.
func (s *Session) Logout(ctx context.Context) error {
	_, err := s.c.do(ctx, call{method: http.MethodPost, path: pathLogout, input: s.c.input(s.UST)}, nil)
	return err
}

// User is a user as the server shows it. A regular user reading themselves gets the fields up
// to TOTPLabel; the others stay zero.
type User struct {
	Username      string  `json:"username"`
	Email         *string `json:"email"`
	DisplayName   *string `json:"display_name"`
	FirstName     *string `json:"first_name"`
	MiddleName    *string `json:"middle_name"`
	LastName      *string `json:"last_name"`
	IsTOTPEnabled bool    `json:"is_totp_enabled"`
	TOTPLabel     string  `json:"totp_label"`

	UserID                string  `json:"user_id"`
	IsActive              bool    `json:"is_active"`
	IsInternal            bool    `json:"is_internal"`
	IsSuperUser           bool    `json:"is_super_user"`
	IsApprovalNeeded      bool    `json:"is_approval_needed"`
	ApprovalStatus        string  `json:"approval_status"`
	ApprovalStatusModTime Time    `json:"approval_status_mod_time"`
	ApprovalStatusModBy   string  `json:"approval_status_mod_by"`
	IsLocked              bool    `json:"is_locked"`
	LockedTime            Time    `json:"locked_time"`
	LockedBy              *string `json:"locked_by"`
	PasswordExpiry        Time    `json:"password_expiry"`
	PasswordIsSet         bool    `json:"password_is_set"`
	PasswordMustChange    bool    `json:"password_must_change"`
	PasswordLastSet       Time    `json:"password_last_set"`
	SignUpStatus          string  `json:"sign_up_status"`
	SignUpTime            Time    `json:"sign_up_time"`
	CreationCtx           string  `json:"creation_ctx"`
}

// GetUser returns the caller.
func (s *Session) GetUser(ctx context.Context) (*User, error) {
	return s.getUser(ctx, "")
}

// GetUserByID returns the user userID (to a super-user; others get E005001).
func (s *Session) GetUserByID(ctx context.Context, userID string) (*User, error) {
	return s.getUser(ctx, userID)
}

func (s *Session) getUser(ctx context.Context, userID string) (*User, error) {
	in := s.c.input(s.UST)
	setIf(in, "user_id", userID)
	u := new(User)
	if _, err := s.c.do(ctx, call{method: http.MethodGet, path: pathUser, input: in, idempotent: true}, u); err != nil {
		return nil, err
	}
	return u, nil
}

// NewUser is the input of [Session.CreateUser]. Nil and false fields are not sent.
type NewUser struct {
	Username                                            string
	Password                                            *string // nil: the server generates one
	Email, DisplayName, FirstName, MiddleName, LastName *string
	IsLocked, PasswordMustChange, IsTOTPEnabled         bool
	TOTPKey, TOTPLabel                                  *string
	SignUpStatus                                        string
	AutoApprove                                         bool // approved at once, whatever the server's approval setting
}

// CreateUser creates a regular user (a super-user's call) and returns it. It is never retried:
// a second attempt would meet E001002 (username taken).
func (s *Session) CreateUser(ctx context.Context, nu NewUser) (*User, error) {
	in := s.c.input(s.UST)
	in["username"] = nu.Username
	for key, v := range map[string]*string{
		"password": nu.Password, "email": nu.Email, "display_name": nu.DisplayName, "first_name": nu.FirstName,
		"middle_name": nu.MiddleName, "last_name": nu.LastName, "totp_key": nu.TOTPKey, "totp_label": nu.TOTPLabel,
	} {
		if v != nil {
			in[key] = *v
		}
	}
	for key, v := range map[string]bool{
		"is_locked": nu.IsLocked, "password_must_change": nu.PasswordMustChange,
		"is_totp_enabled": nu.IsTOTPEnabled, "auto_approve": nu.AutoApprove,
	} {
		if v {
			in[key] = true
		}
	}
	setIf(in, "sign_up_status", nu.SignUpStatus)
	u := new(User)
	if _, err := s.c.do(ctx, call{method: http.MethodPost, path: pathUser, input: in}, u); err != nil {
		return nil, err
	}
	return u, nil
}

// UserChanges is the input of [Session.UpdateUser]: nil fields are left as they are; the keys
// named in Clear are set to null (email, display_name, first_name, middle_name, last_name,
// totp_label). The fields after TOTPLabel are a super-user's to change.
type UserChanges struct {
	Username, Email, DisplayName, FirstName, MiddleName, LastName, TOTPLabel *string
	IsTOTPEnabled                                                            *bool

	IsLocked, PasswordMustChange *bool
	PasswordExpiry               *time.Time
	SignUpStatus, ApprovalStatus *string

	Clear []string
}

func (uc UserChanges) input(in map[string]any) {
	for key, v := range map[string]*string{
		"username": uc.Username, "email": uc.Email, "display_name": uc.DisplayName, "first_name": uc.FirstName,
		"middle_name": uc.MiddleName, "last_name": uc.LastName, "totp_label": uc.TOTPLabel,
		"sign_up_status": uc.SignUpStatus, "approval_status": uc.ApprovalStatus,
	} {
		if v != nil {
			in[key] = *v
		}
	}
	for key, v := range map[string]*bool{
		"is_totp_enabled": uc.IsTOTPEnabled, "is_locked": uc.IsLocked, "password_must_change": uc.PasswordMustChange,
	} {
		if v != nil {
			in[key] = *v
		}
	}
	if uc.PasswordExpiry != nil {
		in["password_expiry"] = formatTime(*uc.PasswordExpiry)
	}
	for _, key := range uc.Clear {
		in[key] = nil
	}
}

// UpdateUser changes the caller. No change at all answers E008003.
func (s *Session) UpdateUser(ctx context.Context, changes UserChanges) error {
	return s.updateUser(ctx, "", changes)
}

// UpdateUserByID changes the user userID (a super-user's call, or a user's on themselves).
func (s *Session) UpdateUserByID(ctx context.Context, userID string, changes UserChanges) error {
	return s.updateUser(ctx, userID, changes)
}

func (s *Session) updateUser(ctx context.Context, userID string, changes UserChanges) error {
	in := s.c.input(s.UST)
	changes.input(in)
	setIf(in, "user_id", userID)
	_, err := s.c.do(ctx, call{method: http.MethodPatch, path: pathUser, input: in}, nil)
	return err
}

// DeleteUser deletes the user userID with their sessions and attributes (a super-user's call).
// It is retried as a DELETE: a retry after a first attempt that went through, unanswered,
// answers E005001.
func (s *Session) DeleteUser(ctx context.Context, userID string) error {
	return s.userAction(ctx, http.MethodDelete, pathUser, userID, true)
}

// LockUser locks the user userID (a super-user's call).
func (s *Session) LockUser(ctx context.Context, userID string) error {
	return s.userAction(ctx, http.MethodPost, pathLock, userID, false)
}

// UnlockUser unlocks the user userID (a super-user's call).
func (s *Session) UnlockUser(ctx context.Context, userID string) error {
	return s.userAction(ctx, http.MethodDelete, pathLock, userID, true)
}

// ApproveUser approves the user userID (a super-user's call).
func (s *Session) ApproveUser(ctx context.Context, userID string) error {
	return s.userAction(ctx, http.MethodPost, pathApprove, userID, false)
}

// RejectUser rejects the user userID (a super-user's call).
func (s *Session) RejectUser(ctx context.Context, userID string) error {
	return s.userAction(ctx, http.MethodPost, pathReject, userID, false)
}

func (s *Session) userAction(ctx context.Context, method, path, userID string, idempotent bool) error {
	in := s.c.input(s.UST)
	in["user_id"] = userID
	_, err := s.c.do(ctx, call{method: method, path: path, input: in, idempotent: idempotent}, nil)
	return err
}

// PasswordChange is the input of [Session.ChangePassword].
type PasswordChange struct {
	NewPassword string
	OldPassword string // the caller's current password, when they change their own
	UserID      string // another user's (a super-user's call); empty: the caller
	ExpiryDays  int    // days until the new password expires; 0: the server's default
	MustChange  bool   // the user must change it at their next login
}

// ChangePassword changes the caller's password, or a user's (a super-user's call).
func (s *Session) ChangePassword(ctx context.Context, pc PasswordChange) error {
	in := s.c.input(s.UST)
	in["new_password"] = pc.NewPassword
	setIf(in, "old_password", pc.OldPassword)
	setIf(in, "user_id", pc.UserID)
	if pc.ExpiryDays != 0 {
		in["password_expiry"] = pc.ExpiryDays
	}
	if pc.MustChange {
		in["must_change"] = true
	}
	_, err := s.c.do(ctx, call{method: http.MethodPatch, path: pathPassword, input: in}, nil)
	return err
}

// ResetTOTPKey sets the TOTP key (generated when key is empty) and label of the caller, or of
// userID (a super-user's call), and returns the key.
func (s *Session) ResetTOTPKey(ctx context.Context, userID, key, label string) (string, error) {
	in := s.c.input(s.UST)
	in["totp_key"], in["totp_label"] = key, label
	setIf(in, "user_id", userID)
	var answer struct {
		TOTPKey string `json:"totp_key"`
	}
	_, err := s.c.do(ctx, call{method: http.MethodPatch, path: pathTOTP, input: in}, &answer)
	return answer.TOTPKey, err
}

// SearchQuery is the input of [Session.SearchUsers]; empty fields are not sent.
type SearchQuery struct {
	UserID, Username, Email, DisplayName, FirstName, MiddleName, LastName string
	SignUpStatus, ApprovalStatus                                          string
	NameOpOr                                                              bool // the name fields match when any matches (default: all)
	NameExact                                                             bool // names match exactly (default: as substrings)
	Paginate                                                              bool
	CurPage                                                               int
	PageSize                                                              int
}

// SearchResult is a page of users found.
type SearchResult struct {
	Users       []User `json:"result"`
	Total       int    `json:"total"`
	NumPages    int    `json:"num_pages"`
	PageSize    int    `json:"page_size"`
	CurPage     int    `json:"cur_page"`
	HasNextPage bool   `json:"has_next_page"`
	HasPrevPage bool   `json:"has_prev_page"`
	NextPage    *int   `json:"next_page"`
	PrevPage    *int   `json:"prev_page"`
}

// SearchUsers finds users (a super-user's call).
func (s *Session) SearchUsers(ctx context.Context, q SearchQuery) (*SearchResult, error) {
	in := s.c.input(s.UST)
	for key, v := range map[string]string{
		"user_id": q.UserID, "username": q.Username, "email": q.Email, "display_name": q.DisplayName,
		"first_name": q.FirstName, "middle_name": q.MiddleName, "last_name": q.LastName,
		"sign_up_status": q.SignUpStatus, "approval_status": q.ApprovalStatus,
	} {
		setIf(in, key, v)
	}
	if q.NameOpOr {
		in["name_op"] = "or"
	}
	if q.NameExact {
		in["is_name_exact"] = true
	}
	if q.Paginate {
		in["paginate"] = true
	}
	if q.CurPage != 0 {
		in["cur_page"] = q.CurPage
	}
	if q.PageSize != 0 {
		in["page_size"] = q.PageSize
	}
	res := new(SearchResult)
	if _, err := s.c.do(ctx, call{method: http.MethodGet, path: pathSearch, input: in, idempotent: true}, res); err != nil {
		return nil, err
	}
	return res, nil
}

// setIf sets in[key] to v unless v is empty.
func setIf(in map[string]any, key, v string) {
	if v != "" {
		in[key] = v
	}
}

// Client returns the client the session calls through.
func (s *Session) Client() *Client { return s.c }

// Package sso is attrcache's Go API: Zato SSO's users, sessions and (later) attributes as Go
// calls, over the store interfaces of package attrcache. The HTTP layer is a thin adapter over it.
//
// Every call that acts for a logged-in user takes the caller's UST, current_app and remote
// address last, as Zato's Python API does, and re-checks the user (locked, not approved,
// password expired) before doing anything. Errors are *attrcache.Error values carrying the Zato
// status code the client sees.
package sso

import (
	"context"
	"errors"
	"time"

	"github.com/attrcache/attrcache"
)

// HashParams are the argon2id parameters of new password hashes. Hashes keep the parameters they
// were made with, so changing these affects only passwords set afterwards.
type HashParams struct {
	Time      uint32 // iterations
	MemoryKiB uint32
	Threads   uint8
	KeyLen    uint32
	SaltLen   uint32
}

// ThrottleConfig bounds password guessing: at most PerUsername failed logins for one username
// and PerAddress for one client address within Window; 0 disables that limit.
type ThrottleConfig struct {
	PerUsername int
	PerAddress  int
	Window      time.Duration
}

// Config is the behaviour of the API (Zato's sso.conf, under attrcache's names).
type Config struct {
	Apps           []string // current_app values allowed at all and for login (apps.all, apps.login_allowed)
	SignupApps     []string // current_app values that may sign up (apps.signup_allowed)
	ApprovalNeeded bool     // signup.is_approval_needed

	SessionExpiry time.Duration // session.expiry

	Password       attrcache.PasswordPolicy
	PasswordExpiry time.Duration // password.expiry: how long a new password lasts
	AboutToExpire  time.Duration // password.about_to_expire_threshold
	Hash           HashParams

	SearchDefaultPageSize int
	SearchMaxPageSize     int

	Throttle ThrottleConfig

	// Now returns the current time; nil means attrcache.Now. Tests set it to move time.
	Now func() time.Time
}

// DefaultConfig returns Zato's defaults (sso.conf as created by zato create server).
func DefaultConfig() Config {
	return Config{
		Apps:           []string{"CRM"},
		ApprovalNeeded: true,
		SessionExpiry:  60 * time.Minute,
		Password: attrcache.PasswordPolicy{
			MinLength:  8,
			MaxLength:  256,
			RejectList: attrcache.DefaultRejectList,
		},
		PasswordExpiry:        730 * 24 * time.Hour,
		AboutToExpire:         30 * 24 * time.Hour,
		Hash:                  HashParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1, KeyLen: 32, SaltLen: 16}, // OWASP's argon2id minimum
		SearchDefaultPageSize: 50,
		SearchMaxPageSize:     100,
		Throttle:              ThrottleConfig{PerUsername: 10, PerAddress: 50, Window: 5 * time.Minute},
	}
}

// API is the Go API. It is safe for concurrent use.
type API struct {
	cfg      Config
	keys     *attrcache.Keyring
	users    attrcache.UserStore
	sessions attrcache.SessionStore
}

// New returns the API over the given stores. keys seals USTs.
func New(cfg Config, keys *attrcache.Keyring, users attrcache.UserStore, sessions attrcache.SessionStore) (*API, error) {
	if keys == nil || users == nil || sessions == nil {
		return nil, errors.New("sso.New: keys, users and sessions are required")
	}
	return &API{cfg: cfg, keys: keys, users: users, sessions: sessions}, nil
}

var errNotImplemented = errors.New("not implemented yet")

// LoginInput is what a login sends. Empty strings stand for both absent and null values.
type LoginInput struct {
	Username    string
	Password    string
	CurrentApp  string
	TOTPCode    string
	NewPassword string
	RemoteAddr  string
	UserAgent   string
}

// LoginResult is a successful login. Warning is attrcache.CodePasswordAboutToExpire when the
// password is about to expire (status "warning" on the wire), else "".
type LoginResult struct {
	UST            string
	Warning        string
	ExpirationTime time.Time
}

// Login checks the credentials in Zato's order and opens a session.
func (a *API) Login(ctx context.Context, cid string, in LoginInput) (*LoginResult, error) {
	return nil, errNotImplemented
}

// Logout ends the session of ust. It answers nil whatever the UST is (only an unknown app fails).
func (a *API) Logout(ctx context.Context, cid, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// UserView is a user as shown to a caller: Full is true when the caller is a super-user and may
// see every field; otherwise only the regular fields are shown.
type UserView struct {
	User *attrcache.User
	Full bool
}

// GetCurrentUser returns the caller's own user.
func (a *API) GetCurrentUser(ctx context.Context, cid, ust, app, remoteAddr string) (*UserView, error) {
	return nil, errNotImplemented
}

// GetUserByID returns any user to a super-user (E005001 otherwise or for an unknown id).
func (a *API) GetUserByID(ctx context.Context, cid, userID, ust, app, remoteAddr string) (*UserView, error) {
	return nil, errNotImplemented
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

// CreateUser creates a regular user; the caller must be a super-user.
func (a *API) CreateUser(ctx context.Context, cid string, in CreateUserInput, ust, app, remoteAddr string) (*attrcache.User, error) {
	return nil, errNotImplemented
}

// UpdateCurrentUser updates the caller's own user from data, keyed by Zato's names. A key absent
// from data leaves the column alone; a nil value clears it where the reference allows.
func (a *API) UpdateCurrentUser(ctx context.Context, cid string, data map[string]any, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// UpdateUserByID updates the user userID from data; see UpdateCurrentUser.
func (a *API) UpdateUserByID(ctx context.Context, cid, userID string, data map[string]any, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// DeleteUserByID deletes a user with their sessions and attributes; super-user only.
func (a *API) DeleteUserByID(ctx context.Context, cid, userID, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// ApproveUser sets the user's approval_status to approved; super-user only.
func (a *API) ApproveUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// RejectUser sets the user's approval_status to rejected; super-user only.
func (a *API) RejectUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// LockUser locks the user; super-user only.
func (a *API) LockUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// UnlockUser unlocks the user; super-user only.
func (a *API) UnlockUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// ChangePasswordInput is a password change. UserID "" is the caller.
type ChangePasswordInput struct {
	UserID             string
	OldPassword        string
	NewPassword        string
	PasswordExpiryDays int // <= 0: the default
	MustChange         bool
}

// ChangePassword sets a new password (see zato-sso-reference.md §6).
func (a *API) ChangePassword(ctx context.Context, cid string, in ChangePasswordInput, ust, app, remoteAddr string) error {
	return errNotImplemented
}

// ResetTOTPKey sets a user's TOTP key (generated when totpKey is "") and label, and returns the key.
func (a *API) ResetTOTPKey(ctx context.Context, cid, userID, totpKey, totpLabel, ust, app, remoteAddr string) (string, error) {
	return "", errNotImplemented
}

// SearchInput is a user search; super-user only.
type SearchInput struct {
	attrcache.UserQuery
	Paginate bool
	CurPage  int
	PageSize int
}

// SearchResult is one page of a search.
type SearchResult struct {
	Users       []*attrcache.User
	Total       int
	NumPages    int
	PageSize    int
	CurPage     int
	HasNextPage bool
	HasPrevPage bool
	NextPage    *int
	PrevPage    *int
}

// Search finds users (zato-sso-reference.md §2.4).
func (a *API) Search(ctx context.Context, cid string, in SearchInput, ust, app, remoteAddr string) (*SearchResult, error) {
	return nil, errNotImplemented
}

// SignupInput is a self-service sign-up.
type SignupInput struct {
	Username   string
	Password   string
	Email      *string
	AppList    []string
	CurrentApp string
	RemoteAddr string
}

// Signup creates a user waiting for confirmation and returns the confirmation token.
func (a *API) Signup(ctx context.Context, cid string, in SignupInput) (string, error) {
	return "", errNotImplemented
}

// ConfirmSignup confirms the sign-up of token.
func (a *API) ConfirmSignup(ctx context.Context, cid, token, app, remoteAddr string) error {
	return errNotImplemented
}

// GetSession returns the session of targetUST to a super-user currentUST.
func (a *API) GetSession(ctx context.Context, cid, targetUST, currentUST, app, remoteAddr string) (*attrcache.Session, error) {
	return nil, errNotImplemented
}

// VerifySession tells a super-user currentUST whether targetUST is a live session.
func (a *API) VerifySession(ctx context.Context, cid, targetUST, currentUST, app, remoteAddr string) (bool, error) {
	return false, errNotImplemented
}

// RenewSession extends the caller's session by the session expiry and returns its new end.
func (a *API) RenewSession(ctx context.Context, cid, ust, app, remoteAddr string) (time.Time, error) {
	return time.Time{}, errNotImplemented
}

// ListSessions returns the caller's live sessions.
func (a *API) ListSessions(ctx context.Context, cid, ust, app, remoteAddr string) ([]*attrcache.Session, error) {
	return nil, errNotImplemented
}

package attrcache

import (
	"context"
	"time"
)

// Approval and sign-up statuses (Zato's const.approval_status and const.signup_status).
const (
	ApprovalApproved       = "approved"
	ApprovalRejected       = "rejected"
	ApprovalBeforeDecision = "before_decision"

	SignUpBeforeConfirmation = "before_confirmation"
	SignUpFinal              = "final"

	// ModByAuto is approval_status_mod_by for users approved by the CLI or by configuration.
	ModByAuto = "auto"
)

// User is one SSO user as stored. Email and TOTPKey hold plaintext here: the store encrypts them.
// TOTPLabel nil means the default label.
type User struct {
	UserID   string
	Username string
	Email    *string

	DisplayName *string
	FirstName   *string
	MiddleName  *string
	LastName    *string

	IsActive    bool
	IsInternal  bool
	IsSuperUser bool
	IsLocked    bool
	LockedTime  *time.Time
	LockedBy    *string
	CreationCtx string

	ApprovalStatus        string
	ApprovalStatusModBy   string
	ApprovalStatusModTime time.Time

	PasswordHash       string
	PasswordIsSet      bool
	PasswordMustChange bool
	PasswordLastSet    time.Time
	PasswordExpiry     time.Time

	SignUpStatus      string
	SignUpTime        time.Time
	SignUpConfirmTime *time.Time
	// SignUpConfirmToken is HashSignUpToken of the token that confirms a sign-up ("" for a user
	// who did not sign up): the token itself goes to the user and is never stored.
	SignUpConfirmToken string

	IsTOTPEnabled bool
	TOTPKey       string
	TOTPLabel     *string

	// Version grows by one with every change of the row; caches use it to refuse older copies.
	Version int64
}

// Principal is what every UST call needs to know of a user to let it in: no secrets, cheap to
// cache, and changed (with Version) by every write that could change the answer.
type Principal struct {
	UserID         string    `json:"user_id"`
	Username       string    `json:"username"`
	IsActive       bool      `json:"is_active"`
	IsSuperUser    bool      `json:"is_super_user"`
	IsLocked       bool      `json:"is_locked"`
	ApprovalStatus string    `json:"approval_status"`
	SignUpStatus   string    `json:"sign_up_status"`
	PasswordExpiry time.Time `json:"password_expiry"`
	Version        int64     `json:"version"`
}

// Principal returns the access-relevant part of u.
func (u *User) Principal() *Principal {
	return &Principal{
		UserID:         u.UserID,
		Username:       u.Username,
		IsActive:       u.IsActive,
		IsSuperUser:    u.IsSuperUser,
		IsLocked:       u.IsLocked,
		ApprovalStatus: u.ApprovalStatus,
		SignUpStatus:   u.SignUpStatus,
		PasswordExpiry: u.PasswordExpiry,
		Version:        u.Version,
	}
}

// Field is one column of an update: Set says whether to write it at all, Value what to write.
type Field[T any] struct {
	Set   bool
	Value T
}

// SetTo returns a Field that writes v.
func SetTo[T any](v T) Field[T] { return Field[T]{Set: true, Value: v} }

// UserUpdate lists the columns an update writes; a Field left zero is not touched. The *_upper
// search columns follow their name fields in the store.
type UserUpdate struct {
	Username    Field[string]
	Email       Field[*string]
	DisplayName Field[*string]
	FirstName   Field[*string]
	MiddleName  Field[*string]
	LastName    Field[*string]

	IsTOTPEnabled Field[bool]
	TOTPKey       Field[string]
	TOTPLabel     Field[*string]

	IsLocked   Field[bool]
	LockedTime Field[*time.Time]
	LockedBy   Field[*string]

	PasswordHash       Field[string]
	PasswordIsSet      Field[bool]
	PasswordMustChange Field[bool]
	PasswordLastSet    Field[time.Time]
	PasswordExpiry     Field[time.Time]

	SignUpStatus      Field[string]
	SignUpConfirmTime Field[*time.Time]

	ApprovalStatus        Field[string]
	ApprovalStatusModBy   Field[string]
	ApprovalStatusModTime Field[time.Time]
}

// UserQuery is a search (zato-sso-reference.md §2.4): UserID, then Username, then the other
// filters take priority. Name filters match the upper-cased name columns, exactly or as substrings.
type UserQuery struct {
	UserID         string
	Username       string
	Email          string
	DisplayName    string
	FirstName      string
	MiddleName     string
	LastName       string
	SignUpStatus   string
	ApprovalStatus string
	NameOpOr       bool // name filters joined with OR instead of AND
	NameExact      bool
	Offset, Limit  int // Limit 0 means no limit
}

// UserStore keeps users. Implementations: persist (MySQL) and cache (Redis around another store).
type UserStore interface {
	// CreateUser inserts u. A taken username gives ErrConflict.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns the user with that user_id, or ErrNotFound.
	UserByID(ctx context.Context, userID string) (*User, error)
	// UserByUsername returns the user with that username, or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (*User, error)
	// UserBySignUpToken returns the user whose sign-up confirmation token it is, or ErrNotFound.
	UserBySignUpToken(ctx context.Context, token string) (*User, error)
	// UpdateUser writes the set fields of upd, bumps Version and returns the user as it now is.
	// An unknown user gives ErrNotFound, a taken username ErrConflict.
	UpdateUser(ctx context.Context, userID string, upd UserUpdate) (*User, error)
	// DeleteUser removes the user with their sessions and attributes, and returns the keys of
	// the attributes it removed (so that a cache can drop its copies); unknown gives ErrNotFound.
	DeleteUser(ctx context.Context, userID string) ([]AttrKey, error)
	// SearchUsers returns one page of the users matching q, ordered by display_name, username,
	// sign_up_time and user_id, and the number of all matches.
	SearchUsers(ctx context.Context, q UserQuery) (users []*User, total int, err error)
}

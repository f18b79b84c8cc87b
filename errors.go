package attrcache

import (
	"errors"
	"fmt"
	"time"
)

// Zato SSO status codes (zato-sso-reference.md §1). They are what clients see in sub_status.
const (
	CodeUsernameInvalid    = "E001001"
	CodeUsernameExists     = "E001002"
	CodeUsernameTooLong    = "E001003"
	CodeUsernameWhitespace = "E001004"

	CodeEmailInvalid = "E002001"
	CodeEmailExists  = "E002002"
	CodeEmailTooLong = "E002003"
	CodeEmailMissing = "E002005"

	CodePasswordInvalid       = "E003001"
	CodePasswordTooShort      = "E003002"
	CodePasswordTooLong       = "E003003"
	CodePasswordExpired       = "E003004"
	CodePasswordAboutToExpire = "W003005"
	CodePasswordMustSendNew   = "E003007"

	CodeAppInvalid  = "E004001"
	CodeAppNoSignup = "E004002"

	CodeNotAllowed          = "E005001"
	CodeLocked              = "E005002"
	CodeInvalidSignupStatus = "E005003"
	CodeNoSuchSignupToken   = "E005006"
	CodeSignupConfirmed     = "E005007"
	CodeTOTPMissing         = "E005008"

	CodeNoSuchSession = "E007001"

	CodeInvalidOperation = "E008001"
	CodeInvalidInput     = "E008002"
	CodeMissingInput     = "E008003"
	CodeInternalError    = "E008004"

	CodeAttrExists = "E009001"

	// attrcache's own codes (CONTRACT.md §10).
	CodeVersionMismatch = "E009101"
	CodeCursorTooOld    = "E009102"
	CodeQuotaExceeded   = "E009103"
)

// Kind says how an error reaches a client; the HTTP layer maps each kind to one status.
type Kind uint8

const (
	// KindDenied is a failed check (Zato's ValidationError): HTTP 403 with the code.
	KindDenied Kind = iota
	// KindAppInvalid is an unknown current_app: HTTP 200 with status "error" (as Zato).
	KindAppInvalid
	// KindBadRequest is a missing required input or a body that is not a JSON object: HTTP 400.
	KindBadRequest
	// KindThrottled is a login refused by the guessing throttle: HTTP 429 with Retry-After.
	KindThrottled
	// KindUnavailable is a backend that cannot be reached: HTTP 503, E008004.
	KindUnavailable
	// KindInternal is a bug: HTTP 500, E008004.
	KindInternal
	// KindGone is a change feed cursor older than what the feed keeps: HTTP 410, E009102.
	KindGone
	// KindConflict is a compare-and-set whose version did not match: HTTP 409, E009101.
	KindConflict
)

func (k Kind) String() string {
	switch k {
	case KindDenied:
		return "denied"
	case KindAppInvalid:
		return "app_invalid"
	case KindBadRequest:
		return "bad_request"
	case KindThrottled:
		return "throttled"
	case KindUnavailable:
		return "unavailable"
	case KindInternal:
		return "internal"
	case KindConflict:
		return "conflict"
	case KindGone:
		return "gone"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is the error every layer returns to its caller. Code is the Zato sub_status the client
// sees; Message is a client-safe explanation (empty where saying more would help an attacker);
// Err is the cause, for logs only.
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	RetryAfter time.Duration // KindThrottled only
	Err        error
}

func (e *Error) Error() string {
	s := e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Denied returns a failed-check error with the given code and client-safe message.
func Denied(code, format string, args ...any) *Error {
	return &Error{Kind: KindDenied, Code: code, Message: sprintf(format, args...)}
}

// NotAllowed returns the generic E005001 error, which says nothing more to the client.
func NotAllowed() *Error { return &Error{Kind: KindDenied, Code: CodeNotAllowed} }

// InvalidInput returns E008002 with a message naming what is wrong.
func InvalidInput(format string, args ...any) *Error {
	return Denied(CodeInvalidInput, format, args...)
}

// BadRequest returns the HTTP 400 error: code is E008003 (missing) or E008002 (malformed).
func BadRequest(code, format string, args ...any) *Error {
	return &Error{Kind: KindBadRequest, Code: code, Message: sprintf(format, args...)}
}

// Unavailable wraps a backend failure: the request was not carried out.
func Unavailable(err error) *Error {
	return &Error{Kind: KindUnavailable, Code: CodeInternalError, Message: "a backend is unavailable", Err: err}
}

// Internal wraps a failure that is a bug.
func Internal(err error) *Error {
	return &Error{Kind: KindInternal, Code: CodeInternalError, Err: err}
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}

// ErrNotFound is returned by stores when the entity asked for does not exist (or has expired).
// It never reaches a client as such: the service layer turns it into the code the reference gives.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a unique key is already taken (a username, an attribute).
var ErrConflict = errors.New("already exists")

// ErrQuotaExceeded is returned by attribute stores when a write would take a user past a quota
// (more attributes or more bytes of values than allowed). Nothing of that write is stored.
var ErrQuotaExceeded = errors.New("quota exceeded")

// ErrVersionMismatch is returned by attribute stores when a write's IfVersion is not the
// attribute's current version. Nothing of that write is stored.
var ErrVersionMismatch = errors.New("version mismatch")

// VersionMismatch returns E009101 (HTTP 409): a compare-and-set found another version.
func VersionMismatch() *Error {
	return &Error{Kind: KindConflict, Code: CodeVersionMismatch,
		Message: "the attribute's current version is not the one given in if_version or If-Match"}
}

// CursorTooOld returns E009102 (HTTP 410): the change feed no longer holds the events after the
// cursor.
func CursorTooOld() *Error {
	return &Error{Kind: KindGone, Code: CodeCursorTooOld, Message: "the cursor is older than the oldest event the feed keeps"}
}

// QuotaExceeded returns E009103 (HTTP 403): the write would take the user past a quota.
func QuotaExceeded() *Error {
	return Denied(CodeQuotaExceeded, "the write would take the user past their quota of attributes or bytes")
}

// AsError returns err as an *Error, treating any other error as internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

// CodeOf returns the Zato code of err ("" for nil).
func CodeOf(err error) string {
	if err == nil {
		return ""
	}
	return AsError(err).Code
}

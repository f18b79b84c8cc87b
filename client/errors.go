package client

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Code is a Zato SSO status code, as an answer's sub_status lists it. A Code is an error value
// for errors.Is: errors.Is(err, CodeNotAllowed) holds when err is an [*Error] whose sub_status
// holds E005001.
type Code string

// The codes of zato-sso-reference.md §1 and attrcache's own (E0091xx).
const (
	CodeUsernameInvalid       Code = "E001001"
	CodeUsernameExists        Code = "E001002"
	CodeUsernameTooLong       Code = "E001003"
	CodeUsernameWhitespace    Code = "E001004"
	CodeEmailInvalid          Code = "E002001"
	CodeEmailExists           Code = "E002002"
	CodePasswordInvalid       Code = "E003001"
	CodePasswordTooShort      Code = "E003002"
	CodePasswordTooLong       Code = "E003003"
	CodePasswordExpired       Code = "E003004"
	CodePasswordAboutToExpire Code = "W003005" // a warning: the login succeeded
	CodePasswordMustSendNew   Code = "E003007"
	CodePasswordNotComplex    Code = "E003008"
	CodeAppInvalid            Code = "E004001"
	CodeAppNoSignup           Code = "E004002"
	CodeNotAllowed            Code = "E005001" // the generic refusal
	CodeLocked                Code = "E005002"
	CodeInvalidSignupStatus   Code = "E005003"
	CodeNoSuchSignupToken     Code = "E005006"
	CodeSignupConfirmed       Code = "E005007"
	CodeTOTPMissing           Code = "E005008"
	CodeNoSuchSession         Code = "E007001"
	CodeInvalidOperation      Code = "E008001"
	CodeInvalidInput          Code = "E008002"
	CodeMissingInput          Code = "E008003"
	CodeInternalError         Code = "E008004"
	CodeAttrExists            Code = "E009001"
	CodeVersionMismatch       Code = "E009101"
	CodeCursorTooOld          Code = "E009102"
	CodeQuotaExceeded         Code = "E009103"
)

// Error returns the code itself, so that a Code prints as one.
func (c Code) Error() string { return string(c) }

// Error is an answer that is not a success: an error envelope (status "error", whatever the
// HTTP status, E004001 coming with HTTP 200), or a non-200 answer of any other body (a proxy's
// 502 page, say), which has no codes.
type Error struct {
	Method, Path string // the call, e.g. "PUT" and "/zato/sso/user/attr"
	HTTPStatus   int
	Status       string   // "error", or "" when the body was not an envelope
	SubStatus    []string // Zato's codes, the first the one that matters
	CID          string   // the server's correlation id of the request (body or X-Zato-CID)
	Message      string   // the server's client-safe explanation, when it gave one
	// RetryAfter is the wait the answer's Retry-After header asks for (429, 503), else 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "attrcache: %s %s: HTTP %d", e.Method, e.Path, e.HTTPStatus)
	if len(e.SubStatus) > 0 {
		b.WriteString(" " + strings.Join(e.SubStatus, ","))
	} else if e.Status == "" {
		b.WriteString(" " + http.StatusText(e.HTTPStatus))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.CID != "" {
		b.WriteString(" (cid " + e.CID + ")")
	}
	return b.String()
}

// Code returns the first sub_status code, or "" when the answer had none.
func (e *Error) Code() Code {
	if len(e.SubStatus) == 0 {
		return ""
	}
	return Code(e.SubStatus[0])
}

// Is reports whether target is a [Code] that e's sub_status holds.
func (e *Error) Is(target error) bool {
	code, ok := target.(Code)
	return ok && slices.Contains(e.SubStatus, string(code))
}

// CodeOf returns the first sub_status code of the [*Error] in err's chain, or "" when there is
// none (nil, a transport failure, an answer without codes).
func CodeOf(err error) Code {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code()
	}
	return ""
}

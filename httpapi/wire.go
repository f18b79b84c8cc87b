package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// userShape selects which keys of a user a response shows (zato-sso-reference.md §2.3).
type userShape int

const (
	// shapeRegular is GET /zato/sso/user by a regular user: the regular fields alone.
	shapeRegular userShape = iota
	// shapeFull is GET /zato/sso/user by a super-user, and search: every field.
	shapeFull
	// shapeCreated is POST /zato/sso/user: every field but locked_time, locked_by, creation_ctx
	// and email (which the caller adds when one was given).
	shapeCreated
)

// wireUser is a user on the wire. The embedded pointers group the keys that some shapes leave
// out: a nil group's keys are absent from the JSON, whereas a nil field inside a group is null.
type wireUser struct {
	*userEmail
	Username      string  `json:"username"`
	DisplayName   *string `json:"display_name"`
	FirstName     *string `json:"first_name"`
	MiddleName    *string `json:"middle_name"`
	LastName      *string `json:"last_name"`
	IsTOTPEnabled bool    `json:"is_totp_enabled"`
	TOTPLabel     string  `json:"totp_label"`
	*userAdminFields
	*userLockFields
}

type userEmail struct {
	Email *string `json:"email"`
}

// userAdminFields are the fields only a super-user sees.
type userAdminFields struct {
	UserID                string `json:"user_id"`
	IsActive              bool   `json:"is_active"`
	IsInternal            bool   `json:"is_internal"`
	IsSuperUser           bool   `json:"is_super_user"`
	IsApprovalNeeded      bool   `json:"is_approval_needed"`
	ApprovalStatus        string `json:"approval_status"`
	ApprovalStatusModTime string `json:"approval_status_mod_time"`
	ApprovalStatusModBy   string `json:"approval_status_mod_by"`
	IsLocked              bool   `json:"is_locked"`
	PasswordExpiry        string `json:"password_expiry"`
	PasswordIsSet         bool   `json:"password_is_set"`
	PasswordMustChange    bool   `json:"password_must_change"`
	PasswordLastSet       string `json:"password_last_set"`
	SignUpStatus          string `json:"sign_up_status"`
	SignUpTime            string `json:"sign_up_time"`
}

// userLockFields are the super-user fields that a created user's response leaves out.
type userLockFields struct {
	LockedTime  *string `json:"locked_time"`
	LockedBy    *string `json:"locked_by"`
	CreationCtx string  `json:"creation_ctx"`
}

// newWireUser returns u in the given shape. The default TOTP label (nil) is "".
func newWireUser(u *attrcache.User, shape userShape) *wireUser {
	w := &wireUser{
		Username:      u.Username,
		DisplayName:   u.DisplayName,
		FirstName:     u.FirstName,
		MiddleName:    u.MiddleName,
		LastName:      u.LastName,
		IsTOTPEnabled: u.IsTOTPEnabled,
		TOTPLabel:     deref(u.TOTPLabel),
	}
	if shape != shapeCreated {
		w.userEmail = &userEmail{Email: u.Email}
	}
	if shape == shapeRegular {
		return w
	}
	w.userAdminFields = &userAdminFields{
		UserID:                u.UserID,
		IsActive:              u.IsActive,
		IsInternal:            u.IsInternal,
		IsSuperUser:           u.IsSuperUser,
		IsApprovalNeeded:      u.ApprovalStatus != attrcache.ApprovalApproved,
		ApprovalStatus:        u.ApprovalStatus,
		ApprovalStatusModTime: attrcache.FormatTime(u.ApprovalStatusModTime),
		ApprovalStatusModBy:   u.ApprovalStatusModBy,
		IsLocked:              u.IsLocked,
		PasswordExpiry:        attrcache.FormatTime(u.PasswordExpiry),
		PasswordIsSet:         u.PasswordIsSet,
		PasswordMustChange:    u.PasswordMustChange,
		PasswordLastSet:       attrcache.FormatTime(u.PasswordLastSet),
		SignUpStatus:          u.SignUpStatus,
		SignUpTime:            attrcache.FormatTime(u.SignUpTime),
	}
	if shape == shapeFull {
		w.userLockFields = &userLockFields{
			LockedTime:  formatTimePtr(u.LockedTime),
			LockedBy:    u.LockedBy,
			CreationCtx: u.CreationCtx,
		}
	}
	return w
}

// userReply is GET and POST /zato/sso/user: the envelope and the user's keys, side by side.
type userReply struct {
	envelope
	*wireUser
}

// searchReply is /zato/sso/user/search.
type searchReply struct {
	envelope
	Result      []*wireUser `json:"result"`
	Total       int         `json:"total"`
	NumPages    int         `json:"num_pages"`
	PageSize    int         `json:"page_size"`
	CurPage     int         `json:"cur_page"`
	HasNextPage bool        `json:"has_next_page"`
	HasPrevPage bool        `json:"has_prev_page"`
	NextPage    *int        `json:"next_page"`
	PrevPage    *int        `json:"prev_page"`
}

func newSearchReply(r *sso.SearchResult) *searchReply {
	users := make([]*wireUser, len(r.Users))
	for i, u := range r.Users {
		users[i] = newWireUser(u, shapeFull)
	}
	return &searchReply{
		Result:      users,
		Total:       r.Total,
		NumPages:    r.NumPages,
		PageSize:    r.PageSize,
		CurPage:     r.CurPage,
		HasNextPage: r.HasNextPage,
		HasPrevPage: r.HasPrevPage,
		NextPage:    r.NextPage,
		PrevPage:    r.PrevPage,
	}
}

// loginReply is /zato/sso/user/login.
type loginReply struct {
	envelope
	UST string `json:"ust"`
}

// totpReply is PATCH /zato/sso/user/totp.
type totpReply struct {
	envelope
	TOTPKey string `json:"totp_key"`
}

// signupReply is POST /zato/sso/user/signup.
type signupReply struct {
	envelope
	ConfirmToken string `json:"confirm_token"`
}

// sessionReply is GET /zato/sso/user/session.
type sessionReply struct {
	envelope
	CreationTime   string `json:"creation_time"`
	ExpirationTime string `json:"expiration_time"`
	RemoteAddr     string `json:"remote_addr"`
	UserAgent      string `json:"user_agent"`
}

// verifyReply is POST /zato/sso/user/session.
type verifyReply struct {
	envelope
	IsValid bool `json:"is_valid"`
}

// renewReply is PATCH /zato/sso/user/session.
type renewReply struct {
	envelope
	ExpirationTime string `json:"expiration_time"`
}

// sessionListReply is /zato/sso/user/session/list. Its items never carry a UST.
type sessionListReply struct {
	envelope
	Result []wireSession `json:"result"`
}

type wireSession struct {
	CreationTime   string `json:"creation_time"`
	ExpirationTime string `json:"expiration_time"`
	RemoteAddr     string `json:"remote_addr"`
	UserAgent      string `json:"user_agent"`
	AuthType       string `json:"auth_type"`
	AuthPrincipal  string `json:"auth_principal"`
	ExtSessionID   string `json:"ext_session_id"`
}

func newSessionListReply(sessions []*attrcache.Session) *sessionListReply {
	items := make([]wireSession, len(sessions))
	for i, s := range sessions {
		items[i] = newWireSession(s)
	}
	return &sessionListReply{Result: items}
}

// newWireSession returns s as a session list shows it: without its token.
func newWireSession(s *attrcache.Session) wireSession {
	return wireSession{
		CreationTime:   attrcache.FormatTime(s.CreationTime),
		ExpirationTime: attrcache.FormatTime(s.ExpirationTime),
		RemoteAddr:     s.RemoteAddr,
		UserAgent:      s.UserAgent,
		AuthType:       s.AuthType,
		AuthPrincipal:  s.AuthPrincipal,
		ExtSessionID:   s.ExtSessionID,
	}
}

// wireAttr is an attribute on the wire.
type wireAttr struct {
	Name           string          `json:"name"`
	Value          json.RawMessage `json:"value"`
	CreationTime   string          `json:"creation_time"`
	LastModified   string          `json:"last_modified"`
	ExpirationTime string          `json:"expiration_time"`
	IsEncrypted    bool            `json:"is_encrypted"`
	Version        int64           `json:"version"`
}

// newWireAttr returns v on the wire, nil for nil (an attribute that was not found).
func newWireAttr(v *sso.AttrValue) *wireAttr {
	if v == nil {
		return nil
	}
	return &wireAttr{
		Name:           v.Name,
		Value:          v.Value,
		CreationTime:   attrcache.FormatTime(v.CreationTime),
		LastModified:   attrcache.FormatTime(v.LastModified),
		ExpirationTime: attrcache.FormatTime(v.ExpirationTime),
		IsEncrypted:    v.IsEncrypted,
		Version:        v.Version,
	}
}

// attrReply is GET on one attribute: found and, when it is found, the attribute's keys beside it,
// and its version as the ETag.
type attrReply struct {
	envelope
	Found bool `json:"found"`
	*wireAttr
}

func (r *attrReply) setHeaders(h http.Header) {
	if r.wireAttr != nil {
		h["Etag"] = []string{formatETag(r.Version)}
	}
}

// formatETag returns the ETag of an attribute's version: the version as a quoted string.
func formatETag(version int64) string {
	return `"` + strconv.FormatInt(version, 10) + `"`
}

// attrWriteReply is a write or a delete: the new version of the single form's attribute, or the
// many form's versions by name (those written); and, with atomic false, each item's result.
type attrWriteReply struct {
	envelope
	Version  *int64            `json:"version,omitempty"`
	Versions *map[string]int64 `json:"versions,omitempty"`
	Result   []wireItemResult  `json:"result,omitempty"`
}

// wireItemResult is one item's result in a write with atomic false. Version is null when the
// item wrote nothing.
type wireItemResult struct {
	Name      string   `json:"name"`
	Status    string   `json:"status"`
	SubStatus []string `json:"sub_status"`
	Message   string   `json:"message,omitempty"`
	Version   *int64   `json:"version"`
}

// resultReply is an answer held in its result key: GET on many attributes, exists and names.
type resultReply[T any] struct {
	envelope
	Result T `json:"result"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func formatTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := attrcache.FormatTime(*t)
	return &s
}

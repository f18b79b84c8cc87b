package sso

import (
	"context"
	"errors"
	"time"

	"github.com/attrcache/attrcache"
)

// AuditEntry is one call that read or changed a user's data (CONTRACT.md §10 "Audit"). It never
// holds a value, a password, a UST, a key, a TOTP code, an e-mail address or a sign-up token.
type AuditEntry struct {
	Time time.Time // when the call arrived, UTC
	CID  string    // the call's cid argument
	// Actor is the user_id the caller's UST names (sealed by this service, so not forged), even
	// when its session has ended; "" when the call had no UST that opens, and for the CLI.
	Actor string
	// Username is the username a login or a sign-up named, given only when no user_id is known
	// (a failed login or sign-up).
	Username string
	// Target is the user_id whose data the call read or changed, when known; for session
	// attributes the session's owner.
	Target     string
	Operation  string   // a stable name per call: attr.set, user.update, login, …
	Attrs      []string // the attribute names a call named, for attribute calls that name any
	RemoteAddr string   // the client's address; AdminRemoteAddr for the command line
	Outcome    string   // "ok", "partial" (some items failed), or the Zato code the call failed with
}

// OutcomeOK is the Outcome of a call that succeeded.
const OutcomeOK = "ok"

// OutcomePartial is the Outcome of a call with per-item results in which some items failed.
const OutcomePartial = "partial"

// Auditor records audit entries. Record is called on the path of every audited call, after the
// call has done its work; it must return quickly and must not keep e.Attrs' array, which the
// caller may reuse.
type Auditor interface {
	Record(ctx context.Context, e AuditEntry)
}

// auditCall is the entry of one audited call in the making; a nil *auditCall (no Auditor
// configured) records nothing.
type auditCall struct {
	auditor Auditor
	entry   AuditEntry
}

// audit starts the entry of a call named op, or returns nil when nothing is audited.
func (a *API) audit(op, cid, remoteAddr string) *auditCall {
	if a.cfg.Audit == nil {
		return nil
	}
	return &auditCall{auditor: a.cfg.Audit, entry: AuditEntry{
		Time: a.cfg.Now().UTC(), CID: cid, Operation: op, RemoteAddr: remoteAddr,
	}}
}

// auditUST starts the entry of a call made with ust: the actor is the user_id ust names.
func (a *API) auditUST(op, cid, ust, remoteAddr string) *auditCall {
	r := a.audit(op, cid, remoteAddr)
	if r != nil {
		r.entry.Actor, _, _ = a.openUST(ust)
	}
	return r
}

// target sets the user whose data the call reads or changes.
func (r *auditCall) target(userID string) *auditCall {
	if r != nil {
		r.entry.Target = userID
	}
	return r
}

// done records the entry with the outcome of err.
func (r *auditCall) done(ctx context.Context, err error) {
	if r == nil {
		return
	}
	switch {
	case err == nil:
		r.entry.Outcome = OutcomeOK
	case errors.Is(err, ErrSomeItemsFailed):
		r.entry.Outcome = OutcomePartial
	default:
		r.entry.Outcome = attrcache.CodeOf(err)
	}
	r.auditor.Record(ctx, r.entry)
}

// actor returns the entry's actor ("" for nil).
func (r *auditCall) actor() string {
	if r == nil {
		return ""
	}
	return r.entry.Actor
}

// actorAndTarget sets both to userID: a login's user acts on their own data.
func (r *auditCall) actorAndTarget(userID string) {
	if r != nil {
		r.entry.Actor, r.entry.Target = userID, userID
	}
}

// doneLogin records a login's or a sign-up's entry: with username when the call failed before
// any user_id was known.
func (r *auditCall) doneLogin(ctx context.Context, username string, err error) {
	if r != nil && r.entry.Target == "" {
		r.entry.Username = username
	}
	r.done(ctx, err)
}

// auditUSTOwner returns the user_id targetUST names when r records anything ("" otherwise, or
// when it does not open).
func (a *API) auditUSTOwner(r *auditCall, targetUST string) string {
	if r == nil {
		return ""
	}
	owner, _, _ := a.openUST(targetUST)
	return owner
}

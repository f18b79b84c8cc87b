package sso

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/attrcache/attrcache"
)

// Export is everything held about one user (CONTRACT.md §10 "Export"): the user as GET user shows
// them to the caller, their live sessions (never a token) and, through Attrs, their attributes
// and their sessions' attributes, decrypted, read one at a time so that a user with many
// attributes is never held in memory whole.
type Export struct {
	User     *attrcache.User // without secrets
	Full     bool            // the caller may see every field of User (a super-user, or the CLI)
	Sessions []ExportSession // ordered as Attrs hands out session attributes

	api    *API
	userID string
	now    time.Time
	refs   map[attrcache.SessionHash]string
}

// ExportSession is one live session of an export. Ref names it in the export alone ("s1", "s2",
// …): it is neither the token nor anything a token can be derived from.
type ExportSession struct {
	Ref     string
	Session *attrcache.Session
}

// ExportUser exports the caller's own data, or with userID (not "") that user's, which a regular
// user may name only when it is their own (E005001 otherwise, as for an unknown or malformed
// user_id). A value sealed with a key that is not configured fails the call before anything is
// handed out (attrcache.KeyMissing).
func (a *API) ExportUser(ctx context.Context, cid, userID, ust, app, remoteAddr string) (_ *Export, err error) {
	rec := a.auditUST("user.export", cid, ust, remoteAddr)
	rec.target(cmp.Or(userID, rec.actor()))
	defer func() { rec.done(ctx, err) }()
	now := a.now()
	c, err := a.authenticate(ctx, ust, app, now)
	if err != nil {
		return nil, err
	}
	if userID == "" {
		userID = c.userID()
	}
	if userID != c.userID() {
		if err := c.requireSuperUser(attrcache.CodeNotAllowed); err != nil {
			return nil, err
		}
		if err := checkUserID(userID); err != nil {
			return nil, err
		}
	}
	return a.export(ctx, userID, c.principal.IsSuperUser, now)
}

// AdminExportUser exports the data of the user with that username, every field shown, for the
// command line; an unknown username gives E005001.
func (a *API) AdminExportUser(ctx context.Context, username string) (_ *Export, err error) {
	rec := a.audit("admin.user.export", "", AdminRemoteAddr)
	defer func() { rec.done(ctx, err) }()
	userID, err := a.userIDOf(ctx, username)
	if err != nil {
		return nil, err
	}
	rec.target(userID)
	return a.export(ctx, userID, true, a.now())
}

// export reads the user and their sessions, and checks that every key sealing their attributes is
// configured.
func (a *API) export(ctx context.Context, userID string, full bool, now time.Time) (*Export, error) {
	exporter, ok := a.attrs.(attrcache.AttrExporter)
	if !ok {
		return nil, attrcache.Internal(errors.New("sso: the attribute store cannot export"))
	}
	u, err := a.users.UserByID(ctx, userID)
	if err != nil {
		return nil, storeError(err, "export: get user", noSuchUser())
	}
	keyIDs, err := exporter.AttrKeyIDsOfUser(ctx, userID)
	if err != nil {
		return nil, storeError(err, "export: key ids", nil)
	}
	for _, id := range keyIDs {
		if !a.keys.Has(id) {
			return nil, attrcache.KeyMissing(id)
		}
	}
	sessions, err := a.sessions.UserSessions(ctx, userID, now)
	if err != nil {
		return nil, storeError(err, "export: sessions", nil)
	}
	slices.SortFunc(sessions, func(x, y *attrcache.Session) int { return cmp.Compare(x.Hash, y.Hash) })
	e := &Export{User: withoutSecrets(u), Full: full, api: a, userID: userID, now: now,
		refs: make(map[attrcache.SessionHash]string, len(sessions))}
	for i, s := range sessions {
		ref := "s" + strconv.Itoa(i+1)
		e.Sessions = append(e.Sessions, ExportSession{Ref: ref, Session: s})
		e.refs[s.Hash] = ref
	}
	return e, nil
}

// Attrs calls fn with each attribute of the export, decrypted, as GET shows it: the user's own
// first (sessionRef ""), then each session's, grouped by session in the order of Sessions. The
// attributes are read from the store of record one at a time; those of a session that started
// after the export began are left out. An error of fn, or of the store, stops it.
func (e *Export) Attrs(ctx context.Context, fn func(sessionRef string, v *AttrValue) error) error {
	exporter := e.api.attrs.(attrcache.AttrExporter) // checked by export
	err := exporter.ScanUserAttrs(ctx, e.userID, e.now, func(attr *attrcache.Attr) error {
		ref := ""
		if attr.Scope.IsSession() {
			var ok bool
			if ref, ok = e.refs[attr.Scope.Session]; !ok {
				return nil
			}
		}
		v, err := e.api.attrValue(attr.Scope, attr, true)
		if err != nil {
			return err
		}
		return fn(ref, v)
	})
	return storeError(err, "export: attributes", nil)
}

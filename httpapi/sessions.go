package httpapi

import (
	"context"

	"github.com/attrcache/attrcache"
)

// The session endpoints (zato-sso-reference.md §2.5) require current_app alone: a missing UST
// is sso's to refuse (E007001), as in Zato, where both USTs are optional inputs.

// readSessionCaller reads the caller of a session endpoint: the UST (ust or current_ust),
// optional, and current_app, required.
func readSessionCaller(req *request) credentials {
	return credentials{
		ust:        req.in.UST(false),
		app:        req.in.RequiredString("current_app"),
		remoteAddr: req.remoteAddr,
	}
}

// getSession is GET /zato/sso/user/session: a super-user reads the session target_ust.
func (s *server) getSession(ctx context.Context, req *request) (reply, error) {
	who := readSessionCaller(req)
	target := req.in.String("target_ust")
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	session, err := s.api.GetSession(ctx, req.cid, target, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	return &sessionReply{
		CreationTime:   attrcache.FormatTime(session.CreationTime),
		ExpirationTime: attrcache.FormatTime(session.ExpirationTime),
		RemoteAddr:     session.RemoteAddr,
		UserAgent:      session.UserAgent,
	}, nil
}

// verifySession is POST /zato/sso/user/session: a super-user asks whether target_ust is live.
func (s *server) verifySession(ctx context.Context, req *request) (reply, error) {
	who := readSessionCaller(req)
	target := req.in.String("target_ust")
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	valid, err := s.api.VerifySession(ctx, req.cid, target, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	return &verifyReply{IsValid: valid}, nil
}

// renewSession is PATCH /zato/sso/user/session: the caller extends their own session.
func (s *server) renewSession(ctx context.Context, req *request) (reply, error) {
	who := readSessionCaller(req)
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	expiresAt, err := s.api.RenewSession(ctx, req.cid, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	return &renewReply{ExpirationTime: attrcache.FormatTime(expiresAt)}, nil
}

// listSessions is GET /zato/sso/user/session/list: the caller's own live sessions.
func (s *server) listSessions(ctx context.Context, req *request) (reply, error) {
	who := readSessionCaller(req)
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	sessions, err := s.api.ListSessions(ctx, req.cid, who.ust, who.app, who.remoteAddr)
	if err != nil {
		return nil, err
	}
	return newSessionListReply(sessions), nil
}

package httpapi

import (
	"context"
	"net/netip"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// Login outcomes recorded by metrics besides the Zato codes of refused logins.
const (
	loginOutcomeOK      = "ok"
	loginOutcomeWarning = "warning"
)

// login is /zato/sso/user/login (zato-sso-reference.md §2.1). The remote_addr and user_agent
// inputs, when given, replace the header-derived values that the session records (a remote_addr
// that is not an IP address is ignored); the login throttle counts the header-derived address
// whatever remote_addr says.
func (s *server) login(ctx context.Context, req *request) (reply, error) {
	in := req.in
	login := sso.LoginInput{
		Username:    in.RequiredString("username"),
		Password:    in.RequiredString("password"),
		CurrentApp:  in.RequiredString("current_app"),
		TOTPCode:    in.String("totp_code"),
		NewPassword: in.String("new_password"),
		RemoteAddr:  req.remoteAddr,
		ClientAddr:  req.remoteAddr,
		UserAgent:   in.StringIfSet("user_agent", req.userAgent),
	}
	if addr, err := netip.ParseAddr(in.String("remote_addr")); err == nil {
		login.RemoteAddr = addr.String()
	}
	if err := in.Err(); err != nil {
		return nil, err
	}

	res, err := s.api.Login(ctx, req.cid, login)
	if err != nil {
		s.metrics.ObserveLogin(attrcache.CodeOf(err))
		return nil, err
	}
	rep := &loginReply{UST: res.UST}
	if res.Warning != "" {
		rep.Status, rep.SubStatus = statusWarning, []string{res.Warning}
		s.metrics.ObserveLogin(loginOutcomeWarning)
	} else {
		s.metrics.ObserveLogin(loginOutcomeOK)
	}
	return rep, nil
}

// logout is /zato/sso/user/logout: ok whatever the UST is.
func (s *server) logout(ctx context.Context, req *request) (reply, error) {
	ust := req.in.UST(true)
	app := req.in.RequiredString("current_app")
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	if err := s.api.Logout(ctx, req.cid, ust, app, req.remoteAddr); err != nil {
		return nil, err
	}
	return &envelope{}, nil
}

// signup is POST /zato/sso/user/signup: it answers the token that confirms the sign-up.
func (s *server) signup(ctx context.Context, req *request) (reply, error) {
	in := req.in
	signup := sso.SignupInput{
		Username:   in.RequiredString("username"),
		Password:   in.RequiredString("password"),
		CurrentApp: in.RequiredString("current_app"),
		Email:      in.OptionalString("email"),
		AppList:    in.StringList("app_list"),
		RemoteAddr: req.remoteAddr,
	}
	if err := in.Err(); err != nil {
		return nil, err
	}
	token, err := s.api.Signup(ctx, req.cid, signup)
	if err != nil {
		return nil, err
	}
	return &signupReply{ConfirmToken: token}, nil
}

// confirmSignup is PATCH /zato/sso/user/signup.
func (s *server) confirmSignup(ctx context.Context, req *request) (reply, error) {
	token := req.in.RequiredString("confirm_token")
	app := req.in.RequiredString("current_app")
	if err := req.in.Err(); err != nil {
		return nil, err
	}
	if err := s.api.ConfirmSignup(ctx, req.cid, token, app, req.remoteAddr); err != nil {
		return nil, err
	}
	return &envelope{}, nil
}

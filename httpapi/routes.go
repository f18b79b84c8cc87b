package httpapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Zato SSO's paths (zato-sso-reference.md §2).
const (
	pathLogin       = "/zato/sso/user/login"
	pathLogout      = "/zato/sso/user/logout"
	pathUser        = "/zato/sso/user"
	pathPassword    = "/zato/sso/user/password"
	pathApprove     = "/zato/sso/user/approve"
	pathReject      = "/zato/sso/user/reject"
	pathLock        = "/zato/sso/user/lock"
	pathTOTP        = "/zato/sso/user/totp"
	pathSearch      = "/zato/sso/user/search"
	pathSignup      = "/zato/sso/user/signup"
	pathSession     = "/zato/sso/user/session"
	pathSessionList = "/zato/sso/user/session/list"
	pathUserExport  = "/zato/sso/user/export"

	pathUserAttr          = "/zato/sso/user/attr"
	pathUserAttrChanges   = "/zato/sso/user/attr/changes"
	pathUserAttrExists    = "/zato/sso/user/attr/exists"
	pathUserAttrNames     = "/zato/sso/user/attr/names"
	pathSessionAttr       = "/zato/sso/session/attr"
	pathSessionAttrExists = "/zato/sso/session/attr/exists"
	pathSessionAttrNames  = "/zato/sso/session/attr/names"

	pathHealth  = "/healthz"
	pathReady   = "/readyz"
	pathMetrics = "/metrics"
)

// anyVerb lists the methods that reach login, logout and search: Zato serves those as plain
// services, which any verb reaches. No route serves another method.
var anyVerb = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// route is one method on one path: its endpoint and what the endpoint reads.
type route struct {
	method, path string
	endpoint     endpoint
	input        *inputSpec
}

// The keys that name the caller of a UST-authenticated call.
var callerKeys = []string{"ust", "current_ust", "current_app"}

// routeTable lists every Zato SSO route with the keys its endpoint reads (CONTRACT.md §3, §4).
// Keys not listed are never decoded.
func (s *server) routeTable() []route {
	var table []route
	add := func(method, path string, e endpoint, input *inputSpec) {
		table = append(table, route{method, path, e, input})
	}
	loginKeys := s.userInput("username", "password", "current_app", "totp_code", "new_password", "remote_addr", "user_agent")
	searchKeys := s.userInput(append([]string{"user_id", "username", "email", "display_name", "first_name", "middle_name", "last_name",
		"sign_up_status", "approval_status", "name_op", "is_name_exact", "paginate", "cur_page", "page_size"}, callerKeys...)...)
	for _, verb := range anyVerb {
		add(verb, pathLogin, s.login, loginKeys)
		add(verb, pathLogout, s.logout, s.userInput(callerKeys...))
		add(verb, pathSearch, s.searchUsers, searchKeys)
	}
	withCaller := func(keys ...string) *inputSpec { return s.userInput(append(keys, callerKeys...)...) }
	byUserID := withCaller("user_id")
	add(http.MethodGet, pathUser, s.getUser, byUserID)
	add(http.MethodGet, pathUserExport, s.exportUser, byUserID)
	add(http.MethodPost, pathUser, s.createUser, withCaller("username", "password", "email", "display_name", "first_name",
		"middle_name", "last_name", "is_locked", "password_must_change", "is_totp_enabled", "totp_key", "totp_label",
		"sign_up_status", "auto_approve"))
	add(http.MethodPatch, pathUser, s.updateUser, withCaller(append([]string{"user_id"}, updateKeys...)...))
	add(http.MethodDelete, pathUser, s.userAction(s.api.DeleteUserByID), byUserID)
	add(http.MethodPatch, pathPassword, s.changePassword, withCaller("new_password", "old_password", "user_id", "password_expiry", "must_change"))
	add(http.MethodPost, pathApprove, s.userAction(s.api.ApproveUser), byUserID)
	add(http.MethodPost, pathReject, s.userAction(s.api.RejectUser), byUserID)
	add(http.MethodPost, pathLock, s.userAction(s.api.LockUser), byUserID)
	add(http.MethodDelete, pathLock, s.userAction(s.api.UnlockUser), byUserID)
	add(http.MethodPatch, pathTOTP, s.resetTOTPKey, withCaller("totp_key", "totp_label", "user_id"))
	add(http.MethodPost, pathSignup, s.signup, s.userInput("username", "password", "current_app", "email", "app_list"))
	add(http.MethodPatch, pathSignup, s.confirmSignup, s.userInput("confirm_token", "current_app"))

	byTarget := withCaller("target_ust")
	add(http.MethodGet, pathSession, s.getSession, byTarget)
	add(http.MethodPost, pathSession, s.verifySession, byTarget)
	add(http.MethodPatch, pathSession, s.renewSession, withCaller())
	add(http.MethodGet, pathSessionList, s.listSessions, withCaller())

	for _, scope := range []struct {
		base, exists, names string
		scope               attrScope
	}{
		{pathUserAttr, pathUserAttrExists, pathUserAttrNames, attrScope{ownerKey: "user_id", open: s.api.UserAttrsDeferred}},
		{pathSessionAttr, pathSessionAttrExists, pathSessionAttrNames, attrScope{ownerKey: "target_ust", open: s.api.SessionAttrsDeferred}},
	} {
		// The attribute endpoints (CONTRACT.md §4): the five verbs of the base path, and GET on
		// exists and names.
		attrs := func(op attrOp) endpoint { return s.attrEndpoint(scope.scope, op) }
		spec := func(keys ...string) *inputSpec {
			return s.attrInput(append(append(keys, scope.scope.ownerKey), callerKeys...)...)
		}
		writeKeys := spec("name", "value", "data", "expiration", "encrypt", "if_version", "atomic")
		add(http.MethodPut, scope.base, attrs(setAttrs), writeKeys)
		add(http.MethodPost, scope.base, attrs(createAttrs), writeKeys)
		add(http.MethodPatch, scope.base, attrs(updateAttrs), writeKeys)
		add(http.MethodDelete, scope.base, attrs(deleteAttrs), spec("name", "data", "if_version", "atomic"))
		add(http.MethodGet, scope.base, attrs(getAttrs), spec("name", "data", "decrypt"))
		add(http.MethodGet, scope.exists, attrs(attrsExist), spec("name", "data"))
		add(http.MethodGet, scope.names, attrs(attrNames), spec())
	}

	add(http.MethodGet, pathUserAttrChanges, s.changes, withCaller("user_id", "after", "limit", "wait"))

	add(http.MethodGet, pathHealth, s.health, s.userInput())
	add(http.MethodGet, pathReady, s.readiness, s.userInput())
	return table
}

// routes registers every route of routeTable, and /metrics. Any other verb on one of these
// paths answers 405, any other path 404, both with the error envelope.
func (s *server) routes(r gin.IRoutes) {
	for _, rt := range s.routeTable() {
		r.Handle(rt.method, rt.path, s.handle(rt.endpoint, rt.input))
	}
	r.GET(pathMetrics, s.observe(s.serveMetrics))
}

// endpoint is one operation: it reads its input from req, calls sso and returns the body of the
// success response, or an error that writeError turns into the error response.
type endpoint func(ctx context.Context, req *request) (reply, error)

// handle adapts an endpoint to gin, observed (see observe): it reads the request's input as
// spec says, runs the endpoint and writes its reply or its error.
func (s *server) handle(e endpoint, spec *inputSpec) gin.HandlerFunc {
	return s.observe(func(c *gin.Context, ex *exchange) {
		rep, err := s.run(c, ex, e, spec)
		if err != nil {
			s.writeError(c, ex, err)
			return
		}
		if es, ok := rep.(eventStreamReply); ok {
			es.serveEvents(c, ex)
			return
		}
		if sr, ok := rep.(streamingReply); ok {
			s.streamReply(c, ex, sr)
			return
		}
		s.writeReply(c, ex, rep)
	})
}

// run reserves the memory of the request's body, reads the request and runs the endpoint; the
// reservation lasts until the endpoint returns, as the decoded input may share the body.
func (s *server) run(c *gin.Context, ex *exchange, e endpoint, spec *inputSpec) (reply, error) {
	release, err := s.reserveBody(c.Request, spec)
	if err != nil {
		return nil, err
	}
	defer release()
	req, err := readRequest(c.Request, c.Writer, ex, spec, s.inflightBodies != nil)
	if err != nil {
		return nil, err
	}
	return e(c.Request.Context(), req)
}

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

	pathUserAttr          = "/zato/sso/user/attr"
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
// services, which any verb reaches.
var anyVerb = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// routes registers every path. Any other verb on one of these paths answers 405, any other path
// 404, both with the error envelope.
func (s *server) routes(r gin.IRoutes) {
	for _, verb := range anyVerb {
		r.Handle(verb, pathLogin, s.handle(s.login))
		r.Handle(verb, pathLogout, s.handle(s.logout))
		r.Handle(verb, pathSearch, s.handle(s.searchUsers))
	}

	r.GET(pathUser, s.handle(s.getUser))
	r.POST(pathUser, s.handle(s.createUser))
	r.PATCH(pathUser, s.handle(s.updateUser))
	r.DELETE(pathUser, s.handle(s.userAction(s.api.DeleteUserByID)))
	r.PATCH(pathPassword, s.handle(s.changePassword))
	r.POST(pathApprove, s.handle(s.userAction(s.api.ApproveUser)))
	r.POST(pathReject, s.handle(s.userAction(s.api.RejectUser)))
	r.POST(pathLock, s.handle(s.userAction(s.api.LockUser)))
	r.DELETE(pathLock, s.handle(s.userAction(s.api.UnlockUser)))
	r.PATCH(pathTOTP, s.handle(s.resetTOTPKey))
	r.POST(pathSignup, s.handle(s.signup))
	r.PATCH(pathSignup, s.handle(s.confirmSignup))

	r.GET(pathSession, s.handle(s.getSession))
	r.POST(pathSession, s.handle(s.verifySession))
	r.PATCH(pathSession, s.handle(s.renewSession))
	r.GET(pathSessionList, s.handle(s.listSessions))

	s.attrRoutes(r, pathUserAttr, pathUserAttrExists, pathUserAttrNames, attrScope{ownerKey: "user_id", open: s.api.UserAttrsDeferred})
	s.attrRoutes(r, pathSessionAttr, pathSessionAttrExists, pathSessionAttrNames, attrScope{ownerKey: "target_ust", open: s.api.SessionAttrsDeferred})

	r.GET(pathHealth, s.handle(s.health))
	r.GET(pathReady, s.handle(s.readiness))
	r.GET(pathMetrics, s.observe(s.serveMetrics))
}

// attrRoutes registers the attribute endpoints of one scope (CONTRACT.md §4): the five verbs of
// its base path, and GET on exists and names.
func (s *server) attrRoutes(r gin.IRoutes, base, exists, names string, scope attrScope) {
	r.PUT(base, s.handle(s.attrEndpoint(scope, setAttrs)))
	r.POST(base, s.handle(s.attrEndpoint(scope, createAttrs)))
	r.PATCH(base, s.handle(s.attrEndpoint(scope, updateAttrs)))
	r.DELETE(base, s.handle(s.attrEndpoint(scope, deleteAttrs)))
	r.GET(base, s.handle(s.attrEndpoint(scope, getAttrs)))
	r.GET(exists, s.handle(s.attrEndpoint(scope, attrsExist)))
	r.GET(names, s.handle(s.attrEndpoint(scope, attrNames)))
}

// endpoint is one operation: it reads its input from req, calls sso and returns the body of the
// success response, or an error that writeError turns into the error response.
type endpoint func(ctx context.Context, req *request) (reply, error)

// handle adapts an endpoint to gin, observed (see observe): it reads the request's input, runs
// the endpoint and writes its reply or its error.
func (s *server) handle(e endpoint) gin.HandlerFunc {
	return s.observe(func(c *gin.Context, ex *exchange) {
		rep, err := s.run(c, ex, e)
		if err != nil {
			s.writeError(c, ex, err)
			return
		}
		s.writeReply(c, ex, rep)
	})
}

func (s *server) run(c *gin.Context, ex *exchange, e endpoint) (reply, error) {
	req, err := readRequest(c.Request, c.Writer, ex, s.maxBodyBytes)
	if err != nil {
		return nil, err
	}
	return e(c.Request.Context(), req)
}

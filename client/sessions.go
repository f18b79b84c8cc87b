package client

import (
	"context"
	"net/http"
	"time"
)

// SessionInfo describes a session. A session list leaves the fields after UserAgent filled;
// a super-user's GetSession only the first four.
type SessionInfo struct {
	CreationTime   Time   `json:"creation_time"`
	ExpirationTime Time   `json:"expiration_time"`
	RemoteAddr     string `json:"remote_addr"`
	UserAgent      string `json:"user_agent"`
	AuthType       string `json:"auth_type"`
	AuthPrincipal  string `json:"auth_principal"`
	ExtSessionID   string `json:"ext_session_id"`
}

// GetSession describes the session targetUST (a super-user's call).
func (s *Session) GetSession(ctx context.Context, targetUST string) (*SessionInfo, error) {
	in := s.c.input(s.UST)
	in["target_ust"] = targetUST
	info := new(SessionInfo)
	if _, err := s.c.do(ctx, call{method: http.MethodGet, path: pathSession, input: in, idempotent: true}, info); err != nil {
		return nil, err
	}
	return info, nil
}

// VerifySession reports whether the session targetUST is live (a super-user's call). It reads
// only, and is retried as reads are.
func (s *Session) VerifySession(ctx context.Context, targetUST string) (bool, error) {
	in := s.c.input(s.UST)
	in["target_ust"] = targetUST
	var answer struct {
		IsValid bool `json:"is_valid"`
	}
	_, err := s.c.do(ctx, call{method: http.MethodPost, path: pathSession, input: in, idempotent: true}, &answer)
	return answer.IsValid, err
}

// Renew extends the caller's session and returns its new expiration time.
func (s *Session) Renew(ctx context.Context) (time.Time, error) {
	var answer struct {
		ExpirationTime Time `json:"expiration_time"`
	}
	_, err := s.c.do(ctx, call{method: http.MethodPatch, path: pathSession, input: s.c.input(s.UST)}, &answer)
	return answer.ExpirationTime.Time, err
}

// ListSessions returns the caller's live sessions (never their USTs).
func (s *Session) ListSessions(ctx context.Context) ([]SessionInfo, error) {
	var answer struct {
		Result []SessionInfo `json:"result"`
	}
	_, err := s.c.do(ctx, call{method: http.MethodGet, path: pathSessionList, input: s.c.input(s.UST), idempotent: true}, &answer)
	return answer.Result, err
}

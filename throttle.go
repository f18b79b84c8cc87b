package attrcache

import (
	"context"
	"time"
)

// FailureLimit names one counter of failures and its bound: at most Limit failures of Name in
// Scope (such as "login-user" or "login-addr") within Window.
type FailureLimit struct {
	Scope  string
	Name   string
	Limit  int
	Window time.Duration
}

// FailureCounter counts failures (wrong passwords, sign-ups) per scope and name, so that the
// service can bound guessing. An implementation shared by every instance of the service makes the
// bound hold across them. Each call is one round trip to its backend; an error means the backend
// could not answer and the caller must fall back on something else.
type FailureCounter interface {
	// RetryAfter returns how long until every limit has fewer than Limit failures counted in its
	// window: 0 when each has fewer already.
	RetryAfter(ctx context.Context, limits []FailureLimit) (time.Duration, error)
	// AddFailure counts one failure against each limit's counter.
	AddFailure(ctx context.Context, limits []FailureLimit) error
	// ResetFailures forgets the failures counted against scope and name.
	ResetFailures(ctx context.Context, scope, name string) error
}

package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one attrcache (or Zato SSO) server as one current_app. It is safe for
// concurrent use; share one per server, so that calls share its keep-alive connections.
type Client struct {
	baseURL   string
	app       string
	http      *http.Client
	timeout   time.Duration
	retry     RetryPolicy
	userAgent string
}

// Option configures a [Client].
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc instead of one over [NewTransport].
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTimeout bounds each call, retries included (default 30 s; 0: only the context bounds it).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithRetry sets how calls that are safe to repeat are retried (default [DefaultRetryPolicy]).
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithUserAgent sets the User-Agent header of every request (default "attrcache-go-client").
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// DefaultTimeout bounds a call when [WithTimeout] does not say otherwise.
const DefaultTimeout = 30 * time.Second

// New returns a client of the server at baseURL (scheme://host[:port], an optional path prefix
// before /zato/sso) that sends currentApp as every request's current_app.
func New(baseURL, currentApp string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("attrcache client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("attrcache client: base URL %q: want http:// or https:// and a host", baseURL)
	}
	if currentApp == "" {
		return nil, errors.New("attrcache client: current_app is required")
	}
	c := &Client{
		baseURL:   strings.TrimSuffix(baseURL, "/"),
		app:       currentApp,
		timeout:   DefaultTimeout,
		retry:     DefaultRetryPolicy,
		userAgent: "attrcache-go-client",
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: NewTransport()}
	}
	return c, nil
}

// NewTransport returns the transport a [Client] uses by default: net/http's defaults, with
// enough idle keep-alive connections per host (64) that concurrent calls reuse connections
// instead of opening new ones.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// RetryPolicy says how a call that is safe to repeat (a read, PUT set, DELETE) is retried
// after a 502, 503 or 504 answer or a failed connection. Other calls are never retried.
type RetryPolicy struct {
	// MaxAttempts is the most times a call is sent, the first included; below 2, never retried.
	MaxAttempts int
	// The wait before the n-th retry is random in [0, min(MaxBackoff, MinBackoff·2ⁿ⁻¹)], or the
	// answer's Retry-After when that is longer; a Retry-After beyond MaxBackoff ends the retries.
	MinBackoff, MaxBackoff time.Duration
}

// DefaultRetryPolicy sends a call at most 3 times, waiting up to 50 ms, then 100 ms.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 3, MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}

// NoRetry sends every call once.
var NoRetry = RetryPolicy{MaxAttempts: 1}

// backoff returns the wait before retry n (1 for the first retry).
func (p RetryPolicy) backoff(n int) time.Duration {
	ceiling := p.MinBackoff << min(n-1, 30)
	if ceiling <= 0 || ceiling > p.MaxBackoff {
		ceiling = p.MaxBackoff
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// maxAnswerBytes bounds the body of an answer the client reads (a get-many of a thousand
// 64 KiB values is well below it).
const maxAnswerBytes = 256 << 20

// call is one request of the REST API.
type call struct {
	method, path string
	input        map[string]any // the JSON body; nil for an empty object
	idempotent   bool           // safe to send again when no answer, or a 5xx gateway answer, came
}

// envelope is the part of every answer that says whether it is a success.
type envelope struct {
	CID       string   `json:"cid"`
	Status    string   `json:"status"`
	SubStatus []string `json:"sub_status"`
	Message   string   `json:"message"`
}

// do sends the call, retrying it as the policy allows, and decodes a successful answer into
// answer (unless nil). It returns the answer's envelope, an *Error for an answer that is not a
// success, or the transport's error.
func (c *Client) do(ctx context.Context, cl call, answer any) (*envelope, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	body, err := json.Marshal(cl.input)
	if err != nil {
		return nil, fmt.Errorf("attrcache: %s %s: encoding the request: %w", cl.method, cl.path, err)
	}
	attempts := 1
	if cl.idempotent {
		attempts = max(1, c.retry.MaxAttempts)
	}
	for n := 1; ; n++ {
		env, err := c.send(ctx, cl, body, answer)
		if n >= attempts || !retryable(err) || ctx.Err() != nil {
			return env, err
		}
		wait := c.retry.backoff(n)
		if e, ok := errors.AsType[*Error](err); ok && e.RetryAfter > wait {
			if e.RetryAfter > c.retry.MaxBackoff {
				return env, err
			}
			wait = e.RetryAfter
		}
		if !sleep(ctx, wait) {
			return env, err
		}
	}
}

// retryable reports whether a call that is safe to repeat may be sent again after err: a
// gateway or unavailable answer, or a failed exchange that the caller's context did not end.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if e, ok := errors.AsType[*Error](err); ok {
		switch e.HTTPStatus {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var decodeErr *decodeError
	return !errors.As(err, &decodeErr)
}

// sleep waits for d and reports whether ctx was still live through it.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// decodeError is a success answer whose body the client could not decode.
type decodeError struct{ err error }

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// send makes one exchange of the call.
func (c *Client) send(ctx context.Context, cl call, body []byte, answer any) (*envelope, error) {
	req, err := http.NewRequestWithContext(ctx, cl.method, c.baseURL+cl.path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("attrcache: %s %s: %w", cl.method, cl.path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("attrcache: %s %s: %w", cl.method, cl.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("attrcache: %s %s: reading the answer: %w", cl.method, cl.path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body) // what is left of an answer too large, so the connection is reused

	var env envelope
	isEnvelope := json.Unmarshal(data, &env) == nil && env.Status != ""
	if resp.StatusCode == http.StatusOK && isEnvelope && (env.Status == "ok" || env.Status == "warning") {
		if answer != nil {
			if err := json.Unmarshal(data, answer); err != nil {
				return &env, &decodeError{fmt.Errorf("attrcache: %s %s: decoding the answer: %w", cl.method, cl.path, err)}
			}
		}
		return &env, nil
	}
	e := &Error{Method: cl.method, Path: cl.path, HTTPStatus: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
	if isEnvelope {
		e.Status, e.SubStatus, e.CID, e.Message = env.Status, env.SubStatus, env.CID, env.Message
	}
	if e.CID == "" {
		e.CID = resp.Header.Get("X-Zato-CID")
	}
	return nil, e
}

// retryAfter returns the wait a Retry-After header asks for (seconds or an HTTP date), else 0.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// input returns the input of a call: current_app, with ust when it is not empty.
func (c *Client) input(ust string) map[string]any {
	in := map[string]any{"current_app": c.app}
	if ust != "" {
		in["ust"] = ust
	}
	return in
}

// Package httpapi is attrcache's REST interface: Zato SSO's paths and wire format (CONTRACT.md §2)
// over the Go API of package sso. It is a thin adapter: it decodes a request's input, calls sso,
// and writes Zato's envelope. Every business rule lives in sso; the wire structs (Zato's JSON
// names) live only here.
package httpapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/semaphore"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/metrics"
	"github.com/attrcache/attrcache/sso"
)

// Options configures NewServer. The zero value is usable.
type Options struct {
	Logger         *slog.Logger                    // nil: discard
	Metrics        *metrics.Metrics                // nil: none
	Ready          func(ctx context.Context) error // /readyz; nil: always ready
	MetricsHandler http.Handler                    // served at /metrics; nil: 404
	// MaxBodyBytes bounds every request body (the routes have smaller bounds of their own, see
	// limits.go); 0: 1 MiB.
	MaxBodyBytes int64
	// MaxInflightBodyBytes bounds the bytes of request bodies that all requests together may
	// hold at once; 0: no bound. A bound below MaxBodyBytes lowers MaxBodyBytes to it.
	MaxInflightBodyBytes int64
	// MaxAttrValueBytes is the attribute value limit of the sso.API (sso.Config's), from which
	// the attribute endpoints' body bound derives; 0: attrcache.DefaultMaxValueBytes.
	MaxAttrValueBytes int

	// TrustedProxies are the peers whose X-Zato-Forwarded-For and X-Forwarded-For headers are
	// believed (see remoteAddr); none: the client is always the connection's peer.
	TrustedProxies []netip.Prefix

	// StreamsEnd, once closed, ends the change feed's event streams (their clients resume
	// elsewhere with Last-Event-ID), so that a shutdown need not wait for them; nil: never.
	StreamsEnd <-chan struct{}
}

// defaultMaxBodyBytes bounds a request body when Options.MaxBodyBytes is 0.
const defaultMaxBodyBytes = 1 << 20

// cidHeader carries a response's correlation id, the same value as the body's cid.
const cidHeader = "X-Zato-CID"

// cidHeaderKey is cidHeader as http.Header stores it (its canonical form).
var cidHeaderKey = http.CanonicalHeaderKey(cidHeader)

// Headers of every answer (CONTRACT.md §2): answers carry USTs and decrypted values, which no
// cache may keep, and are JSON, which no browser may sniff as something else. The slices are
// shared by every response and never modified.
var (
	noStore = []string{"no-store"}
	noSniff = []string{"nosniff"}
)

// unmatchedRoute labels the metrics and logs of requests that matched no path.
const unmatchedRoute = "unmatched"

// NewServer returns the HTTP handler of every Zato SSO path (routes.go) plus /healthz, /readyz
// and /metrics. Every response carries a fresh cid in its body and in the X-Zato-CID header; no
// client input produces a 500.
func NewServer(api *sso.API, opts Options) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	s := &server{
		api:            api,
		log:            opts.Logger,
		metrics:        opts.Metrics,
		ready:          opts.Ready,
		metricsHandler: opts.MetricsHandler,
		maxBodyBytes:   opts.MaxBodyBytes,
		trustedProxies: opts.TrustedProxies,
		streamsEnd:     opts.StreamsEnd,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = defaultMaxBodyBytes
	}
	if opts.MaxInflightBodyBytes > 0 {
		s.maxBodyBytes = min(s.maxBodyBytes, opts.MaxInflightBodyBytes)
		s.inflightBodies = semaphore.NewWeighted(opts.MaxInflightBodyBytes)
	}
	s.maxAttrValueBytes = cmp.Or(max(opts.MaxAttrValueBytes, 0), attrcache.DefaultMaxValueBytes)

	engine := gin.New()
	engine.HandleMethodNotAllowed = true
	engine.RedirectTrailingSlash = false
	engine.NoRoute(s.observe(func(c *gin.Context, ex *exchange) { s.writeError(c, ex, errNoSuchPath) }))
	engine.NoMethod(s.observe(func(c *gin.Context, ex *exchange) { s.writeError(c, ex, errMethodNotAllowed) }))
	s.routes(engine)

	s.knownPaths = make(map[string]bool)
	for _, r := range engine.Routes() {
		s.knownPaths[r.Path] = true
	}
	return engine
}

// server holds what the handlers share. It is read-only after NewServer.
type server struct {
	api            *sso.API
	log            *slog.Logger
	metrics        *metrics.Metrics
	ready          func(ctx context.Context) error
	metricsHandler http.Handler
	maxBodyBytes   int64
	knownPaths     map[string]bool // every routed path, to label a 405 by its path

	inflightBodies    *semaphore.Weighted // the body bytes requests may hold at once; nil: no bound
	maxAttrValueBytes int
	trustedProxies    []netip.Prefix
	streamsEnd        <-chan struct{}
}

// exchange is what observe, the handler and the response writers record about one request.
// observe passes it to the handler, which passes it on; it is not stored in the gin.Context,
// whose map of keys would cost allocations on every request.
type exchange struct {
	cid        string
	cidHeader  [1]string // the X-Zato-CID header's values: cid
	remoteAddr string    // see remoteAddr
	subStatus  []string
	cause      error // internal detail of an error response: logged, never sent
}

// newCID returns a fresh correlation id: 24 hex digits of random bits, as Zato's.
func newCID() string {
	var random [12]byte
	_, _ = rand.Read(random[:]) // crypto/rand.Read never fails on supported platforms
	var digits [2 * len(random)]byte
	hex.Encode(digits[:], random[:])
	return string(digits[:])
}

// observedHandler handles a request that observe has given its exchange.
type observedHandler func(c *gin.Context, ex *exchange)

// observe returns the gin handler of h; every route and the 404 and 405 handlers are one. It
// gives the request its cid, turns a panic into a 500 E008004 response, and records one log
// line and the HTTP metrics of every request.
func (s *server) observe(h observedHandler) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		ex := &exchange{cid: newCID(), remoteAddr: remoteAddr(c.Request, s.trustedProxies)}
		ex.cidHeader[0] = ex.cid
		header := c.Writer.Header()
		header[cidHeaderKey] = ex.cidHeader[:] // as c.Header(cidHeader, ex.cid) sets it
		header["Cache-Control"] = noStore
		header["X-Content-Type-Options"] = noSniff
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "cid", ex.cid, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !c.Writer.Written() {
					s.writeError(c, ex, attrcache.Internal(fmt.Errorf("panic: %v", v)))
				}
			}
			s.record(c, ex, time.Since(start))
		}()
		h(c, ex)
	}
}

// record writes the request's log line and metrics. The line never holds bodies, so no
// password, UST, TOTP key or attribute value reaches the log.
func (s *server) record(c *gin.Context, ex *exchange, elapsed time.Duration) {
	route := s.routeLabel(c)
	status := c.Writer.Status()
	s.metrics.ObserveHTTP(route, methodLabel(c.Request.Method), status, elapsed)

	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	ctx := c.Request.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("cid", ex.cid),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Any("sub_status", ex.subStatus),
		slog.Duration("latency", elapsed),
		slog.String("remote_addr", ex.remoteAddr),
	)
	if ex.cause != nil {
		attrs = append(attrs, slog.String("cause", ex.cause.Error()))
	}
	s.log.LogAttrs(ctx, level, "request", attrs...)
}

// routeLabel returns the route template of the request: the matched path, the path itself when
// it is routed but not for this method (a 405), else "unmatched". Raw unknown paths never become
// labels, so the metrics' cardinality stays bounded.
func (s *server) routeLabel(c *gin.Context) string {
	if route := c.FullPath(); route != "" {
		return route
	}
	if s.knownPaths[c.Request.URL.Path] {
		return c.Request.URL.Path
	}
	return unmatchedRoute
}

// otherMethod labels the metrics of a request whose method no route serves.
const otherMethod = "other"

// methodLabel returns the metrics label of an HTTP method: the method when a route serves it
// (anyVerb lists them all), else otherMethod, so that made-up methods add no series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return method
	}
	return otherMethod
}

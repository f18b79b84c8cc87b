package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/attrcache/attrcache/client"
)

// pathUserAttr is the Zato SSO path of the load's requests.
const pathUserAttr = "/zato/sso/user/attr"

// maxItemsPerRequest is the most items a many-attribute request may carry (CONTRACT.md §4).
const maxItemsPerRequest = 1000

// preparationParallelism bounds the concurrent requests that prepare users and attributes:
// logins hash passwords, which is CPU-bound on the server.
const preparationParallelism = 4

// ZatoConfig describes the attrcache (or Zato SSO) instance to load and the data to prepare.
type ZatoConfig struct {
	BaseURL    string // scheme://host:port, without a path
	CurrentApp string // sent as current_app
	// The super-user that creates the load's users: a UST, or a username and password to log
	// in with.
	SuperUserUST      string
	SuperUserName     string
	SuperUserPassword string
	Users             int // regular users to create; each works on its own attributes
	Attrs             int // attributes each user has, all written before the load starts
	Many              int // items of a set_many or get_many request, at most Attrs
	ValueSize         int // characters of each attribute's value (a JSON string)
	Client            *http.Client
}

func (c *ZatoConfig) validate() error {
	switch {
	case c.BaseURL == "" || c.CurrentApp == "":
		return errors.New("the base URL and current_app are required")
	case c.SuperUserUST == "" && (c.SuperUserName == "" || c.SuperUserPassword == ""):
		return errors.New("a super-user UST, or a super-user name and password, is required")
	case c.Users < 1 || c.Attrs < 1 || c.ValueSize < 0:
		return fmt.Errorf("users %d, attributes %d, value size %d: want at least one user and one attribute", c.Users, c.Attrs, c.ValueSize)
	case c.Many < 1 || c.Many > min(c.Attrs, maxItemsPerRequest):
		return fmt.Errorf("many %d: want from 1 to the number of attributes (%d), at most %d", c.Many, c.Attrs, maxItemsPerRequest)
	case c.Client == nil:
		return errors.New("no HTTP client")
	}
	return nil
}

// ZatoTarget drives the user-attribute endpoints of Zato SSO: each operation picks one of the
// prepared users at random and reads or writes its attributes with that user's own session.
// Build one with [PrepareZato]; remove what it created with Cleanup.
type ZatoTarget struct {
	cfg       ZatoConfig
	api       *client.Client  // prepares the data and removes it; the load goes by send or raw
	superUser *client.Session // the session that creates and deletes the load's users
	loggedIn  bool            // whether superUser is a session PrepareZato opened
	users     []zatoUser      // those created, also when preparation failed half-way
	names     [][]byte        // the attribute names, JSON-encoded
	value     []byte          // the value every write sends, JSON-encoded
	requests  sync.Pool       // of *[]byte, for request bodies
	answers   sync.Pool       // of *bytes.Buffer, for answer bodies
	// raw sends the load's requests to an http target (nil for https: cfg.Client does).
	raw *rawClient
}

var _ Target = (*ZatoTarget)(nil)

// zatoUser is one regular user of the load.
type zatoUser struct {
	userID string
	// prefix opens each request body: `{"ust":"…","current_app":"…",`.
	prefix []byte
}

// PrepareZato logs the super-user in (unless given a UST), creates cfg.Users approved regular
// users, logs each in, and sets cfg.Attrs attributes of each. On failure it removes what it had
// created before returning the error.
func PrepareZato(ctx context.Context, cfg ZatoConfig) (*ZatoTarget, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	// Only cfg.Client.Timeout bounds a call, as it bounds the load's requests.
	api, err := client.New(cfg.BaseURL, cfg.CurrentApp, client.WithHTTPClient(cfg.Client), client.WithTimeout(0))
	if err != nil {
		return nil, err
	}
	t := &ZatoTarget{cfg: cfg, api: api}
	t.requests.New = func() any { return new([]byte) }
	t.answers.New = func() any { return new(bytes.Buffer) }
	t.value = mustJSON(randomLetters(cfg.ValueSize))
	if u, err := url.Parse(cfg.BaseURL); err == nil && u.Scheme == "http" {
		t.raw = newRawClient(u.Host, maxIdleConns(cfg.Client), cfg.Client.Timeout)
	}
	for i := range cfg.Attrs {
		t.names = append(t.names, mustJSON(attrName(i)))
	}

	if err := t.prepare(ctx); err != nil {
		// The clean-up must run even when ctx was cancelled.
		cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return nil, errors.Join(err, t.Cleanup(cleanupCtx))
	}
	return t, nil
}

func (t *ZatoTarget) prepare(ctx context.Context) error {
	if t.cfg.SuperUserUST != "" {
		t.superUser = t.api.Session(t.cfg.SuperUserUST)
	} else {
		s, err := t.login(ctx, t.cfg.SuperUserName, t.cfg.SuperUserPassword)
		if err != nil {
			return fmt.Errorf("logging the super-user in: %w", err)
		}
		t.superUser, t.loggedIn = s, true
	}

	run := randomHex(4) // keeps the usernames of concurrent or repeated runs apart
	t.users = make([]zatoUser, t.cfg.Users)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(preparationParallelism)
	for i := range t.users {
		g.Go(func() error {
			username := fmt.Sprintf("bench-%s-%d", run, i)
			return t.prepareUser(gctx, &t.users[i], username)
		})
	}
	return g.Wait()
}

// prepareUser creates, logs in and fills the attributes of one user, recording into u what it
// created.
func (t *ZatoTarget) prepareUser(ctx context.Context, u *zatoUser, username string) error {
	password := base64.RawURLEncoding.EncodeToString(randomBytes(18))
	created, err := t.superUser.CreateUser(ctx, client.NewUser{Username: username, Password: &password, AutoApprove: true})
	if err != nil {
		return fmt.Errorf("creating user %s: %w", username, err)
	}
	u.userID = created.UserID
	s, err := t.login(ctx, username, password)
	if err != nil {
		return fmt.Errorf("logging user %s in: %w", username, err)
	}
	u.prefix = fmt.Appendf(nil, `{"ust":%s,"current_app":%s,`, mustJSON(s.UST), mustJSON(t.cfg.CurrentApp))

	attrs := s.UserAttrs("")
	for first := 0; first < t.cfg.Attrs; first += maxItemsPerRequest {
		items := make([]client.Item, min(maxItemsPerRequest, t.cfg.Attrs-first))
		for j := range items {
			items[j] = client.Item{Name: attrName(first + j), Value: json.RawMessage(t.value)}
		}
		if err := attrs.SetMany(ctx, items); err != nil {
			return fmt.Errorf("setting the attributes of user %s: %w", username, err)
		}
	}
	return nil
}

// attrName returns the name of attribute i.
func attrName(i int) string { return fmt.Sprintf("bench-attr-%05d", i) }

// login opens a session.
func (t *ZatoTarget) login(ctx context.Context, username, password string) (*client.Session, error) {
	s, err := t.api.Login(ctx, client.Credentials{Username: username, Password: password})
	if err == nil && s.UST == "" {
		err = errors.New("the answer holds no ust")
	}
	return s, err
}

// Cleanup deletes the users PrepareZato created (their sessions and attributes go with them)
// and logs out the super-user session it opened.
func (t *ZatoTarget) Cleanup(ctx context.Context) error {
	if t.raw != nil {
		t.raw.close()
	}
	var errs []error
	for _, u := range t.users {
		if u.userID == "" {
			continue
		}
		if err := t.superUser.DeleteUser(ctx, u.userID); err != nil {
			errs = append(errs, fmt.Errorf("deleting user %s: %w", u.userID, err))
		}
	}
	if t.loggedIn {
		if err := t.superUser.Logout(ctx); err != nil {
			errs = append(errs, fmt.Errorf("logging the super-user out: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Do carries out op for a user chosen at random and returns "" or the failure's code.
func (t *ZatoTarget) Do(ctx context.Context, op Op, rng *mathrand.Rand) string {
	u := &t.users[rng.IntN(len(t.users))]
	pooled := t.requests.Get().(*[]byte)
	body := (*pooled)[:0]
	defer func() { *pooled = body; t.requests.Put(pooled) }()

	method, check := http.MethodGet, (*attrAnswer).ok
	switch op {
	case OpGet:
		body = t.getBody(body, u, rng.IntN(len(t.names)))
		check = (*attrAnswer).found
	case OpSet:
		body = t.setBody(body, u, rng.IntN(len(t.names)))
		method = http.MethodPut
	case OpSetMany:
		body = t.setManyBody(body, u, rng.IntN(len(t.names)), t.cfg.Many)
		method = http.MethodPut
	case OpGetMany:
		body = t.getManyBody(body, u, rng.IntN(len(t.names)), t.cfg.Many)
	default:
		return "unknown operation " + op.String()
	}
	var answer attrAnswer
	if code := t.sendLoad(ctx, method, pathUserAttr, body, &answer); code != "" {
		return code
	}
	return check(&answer)
}

// sendLoad is send for the load's requests: over the raw client when there is one.
func (t *ZatoTarget) sendLoad(ctx context.Context, method, path string, body []byte, answer any) string {
	if t.raw == nil {
		return t.send(ctx, method, path, body, answer)
	}
	buf := t.answers.Get().(*bytes.Buffer)
	defer t.answers.Put(buf)
	status, err := t.raw.do(ctx, method, path, body, buf)
	if err != nil {
		return transportCode(err)
	}
	return answerCode(status, buf.Bytes(), answer)
}

// maxIdleConns returns how many idle connections client keeps per host, at least 1.
func maxIdleConns(client *http.Client) int {
	if tr, ok := client.Transport.(*http.Transport); ok && tr.MaxIdleConnsPerHost > 0 {
		return tr.MaxIdleConnsPerHost
	}
	return 64
}

// attrAnswer is the part of an attribute endpoint's answer the target checks.
type attrAnswer struct {
	Found *bool `json:"found"`
}

func (*attrAnswer) ok() string { return "" }

// found returns "" when a single-attribute GET found the attribute: every attribute the load
// reads was written before it started.
func (a *attrAnswer) found() string {
	if a.Found == nil || !*a.Found {
		return "not found"
	}
	return ""
}

// The request bodies. Each appends to b; first is the index of the first of n attributes,
// taken in order and wrapping around.

func (t *ZatoTarget) getBody(b []byte, u *zatoUser, i int) []byte {
	b = append(b, u.prefix...)
	return append(append(append(b, `"name":`...), t.names[i]...), '}')
}

func (t *ZatoTarget) setBody(b []byte, u *zatoUser, i int) []byte {
	b = append(b, u.prefix...)
	b = append(append(b, `"name":`...), t.names[i]...)
	return append(append(append(b, `,"value":`...), t.value...), '}')
}

func (t *ZatoTarget) setManyBody(b []byte, u *zatoUser, first, n int) []byte {
	b = append(append(b, u.prefix...), `"data":[`...)
	for j := range n {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(append(b, `{"name":`...), t.names[(first+j)%len(t.names)]...)
		b = append(append(append(b, `,"value":`...), t.value...), '}')
	}
	return append(b, "]}"...)
}

func (t *ZatoTarget) getManyBody(b []byte, u *zatoUser, first, n int) []byte {
	b = append(append(b, u.prefix...), `"data":[`...)
	for j := range n {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, t.names[(first+j)%len(t.names)]...)
	}
	return append(b, "]}"...)
}

// send sends one of the load's requests over cfg.Client and returns "" when the answer is a
// success (HTTP 200 with status ok or warning), else the failure's code; a successful answer
// is decoded into answer unless nil.
func (t *ZatoTarget) send(ctx context.Context, method, path string, body []byte, answer any) string {
	req, err := http.NewRequestWithContext(ctx, method, t.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return "bad request: " + err.Error()
	}
	resp, err := t.cfg.Client.Do(req)
	if err != nil {
		return transportCode(err)
	}
	defer resp.Body.Close()
	buf := t.answers.Get().(*bytes.Buffer)
	defer t.answers.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return transportCode(err)
	}
	return answerCode(resp.StatusCode, buf.Bytes(), answer)
}

// answerCode classifies an answer: "" for a success, decoded into answer unless nil; else the
// first sub_status code and the HTTP status, such as "E005001 (HTTP 403)".
func answerCode(httpStatus int, body []byte, answer any) string {
	var envelope struct {
		Status    string   `json:"status"`
		SubStatus []string `json:"sub_status"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil {
		return fmt.Sprintf("malformed answer (HTTP %d)", httpStatus)
	}
	if httpStatus == http.StatusOK && (envelope.Status == "ok" || envelope.Status == "warning") {
		if answer != nil && json.Unmarshal(body, answer) != nil {
			return "malformed answer (HTTP 200)"
		}
		return ""
	}
	code := "no sub_status"
	if len(envelope.SubStatus) > 0 {
		code = envelope.SubStatus[0]
	}
	return fmt.Sprintf("%s (HTTP %d)", code, httpStatus)
}

// transportCode classifies a failure to get an answer.
func transportCode(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	default:
		return "transport error"
	}
}

// NewHTTPClient returns a client for load: it keeps up to conns idle keep-alive connections to
// the target (so that conns concurrent requests never open new ones), does not ask for
// compression, and gives up on a request after timeout.
func NewHTTPClient(conns int, timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = conns
	transport.MaxIdleConnsPerHost = conns
	transport.DisableCompression = true
	transport.ForceAttemptHTTP2 = false
	return &http.Client{Transport: transport, Timeout: timeout}
}

// CheckLoopback returns an error unless rawURL is an http URL whose host is "localhost" or a
// loopback IP address.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: want an http or https URL", rawURL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
		return nil
	}
	return fmt.Errorf("URL %q: %q is not a loopback address", rawURL, host)
}

func mustJSON(v string) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // a string always encodes
	}
	return data
}

// randomLetters returns n random lower-case letters.
func randomLetters(n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand documents it)
	return b
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/attrcache/attrcache"
)

// Response statuses (Zato's status key).
const (
	statusOK      = "ok"
	statusWarning = "warning"
	statusError   = "error"
)

// envelope is the part of every response body that Zato's clients read first.
type envelope struct {
	CID       string   `json:"cid"`
	Status    string   `json:"status"`
	SubStatus []string `json:"sub_status"`
}

func (e *envelope) head() *envelope { return e }

// reply is a success response body: a wire struct that embeds envelope. An endpoint leaves the
// envelope zero unless it answers a warning; writeReply fills in the rest.
type reply interface {
	head() *envelope
}

// headerReply is a reply that sets response headers of its own.
type headerReply interface {
	setHeaders(h http.Header)
}

// errorBody is every error response body. Result and Details are Zato's 400 body.
type errorBody struct {
	envelope
	Result  string `json:"result,omitempty"`
	Details string `json:"details,omitempty"`
	Message string `json:"message,omitempty"`
}

// statusByKind is the HTTP status of each kind of error (ARCHITECTURE.md, "Errors").
var statusByKind = map[attrcache.Kind]int{
	attrcache.KindDenied:      http.StatusForbidden,
	attrcache.KindAppInvalid:  http.StatusOK,
	attrcache.KindBadRequest:  http.StatusBadRequest,
	attrcache.KindThrottled:   http.StatusTooManyRequests,
	attrcache.KindUnavailable: http.StatusServiceUnavailable,
	attrcache.KindInternal:    http.StatusInternalServerError,
	attrcache.KindGone:        http.StatusGone,
	attrcache.KindConflict:    http.StatusConflict,
}

// transportError is an error of the HTTP exchange itself (unknown path, unsupported verb, body
// too large), whose status no Kind gives.
type transportError struct {
	status int
	err    *attrcache.Error
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

var (
	errNoSuchPath = &transportError{http.StatusNotFound,
		attrcache.InvalidInput("no such path")}
	errMethodNotAllowed = &transportError{http.StatusMethodNotAllowed,
		attrcache.InvalidInput("the method is not supported on this path")}
	errBodyTooLarge = &transportError{http.StatusRequestEntityTooLarge,
		attrcache.InvalidInput("the request body is too large")}
)

// httpStatus returns the HTTP status of an error response.
func httpStatus(err error, e *attrcache.Error) int {
	if te, ok := errors.AsType[*transportError](err); ok {
		return te.status
	}
	if status, ok := statusByKind[e.Kind]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// writeError writes the response of err, whatever it is: the status from its kind, its Zato code
// as sub_status, and its client-safe message. The cause (Err) is recorded for the request's log
// line and never sent. Errors that are not *attrcache.Error are internal: 500, E008004.
func (s *server) writeError(c *gin.Context, ex *exchange, err error) {
	e := attrcache.AsError(err)
	status := httpStatus(err, e)
	ex.subStatus = []string{e.Code}
	ex.cause = e.Err
	s.metrics.ObserveHTTPError(s.routeLabel(c), e.Code)

	body := &errorBody{
		envelope: envelope{CID: ex.cid, Status: statusError, SubStatus: ex.subStatus},
		Message:  e.Message,
	}
	if status == http.StatusBadRequest {
		body.Result, body.Details = "Error", "Bad request"
	}
	if e.Kind == attrcache.KindThrottled {
		c.Header("Retry-After", retryAfterSeconds(e.RetryAfter))
	}
	c.Abort()
	writeJSON(c, status, body)
}

// retryAfterSeconds renders a wait as whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// writeReply writes a success response: HTTP 200 with the envelope filled in (status "ok" and
// an empty sub_status unless the endpoint set them).
func (s *server) writeReply(c *gin.Context, ex *exchange, r reply) {
	head := r.head()
	head.CID = ex.cid
	if head.Status == "" {
		head.Status = statusOK
	}
	if head.SubStatus == nil {
		head.SubStatus = []string{}
	}
	ex.subStatus = head.SubStatus
	if hr, ok := r.(headerReply); ok {
		hr.setHeaders(c.Writer.Header())
	}
	writeJSON(c, http.StatusOK, r)
}

// jsonContentType is the Content-Type of a JSON response (gin's, for c.JSON).
var jsonContentType = []string{"application/json; charset=utf-8"}

// writeJSON writes a response of status whose body is v as encoding/json.Marshal encodes it,
// with the JSON Content-Type unless the response has one, as c.JSON does but without its
// allocations. A value that cannot be encoded writes no body; that error, or one writing the
// body, is recorded in c.Errors and aborts the handler chain, as c.JSON does.
func writeJSON(c *gin.Context, status int, v any) {
	c.Status(status)
	header := c.Writer.Header()
	if len(header["Content-Type"]) == 0 {
		header["Content-Type"] = jsonContentType
	}
	enc := jsonEncoders.Get().(*jsonEncoder)
	defer enc.release()
	err := enc.encoder.Encode(v)
	if err == nil {
		body := enc.buf.Bytes()
		_, err = c.Writer.Write(body[:len(body)-1]) // without the newline that Encode adds and Marshal does not
	}
	if err != nil {
		_ = c.Error(err)
		c.Abort()
	}
}

// jsonEncoder is a json.Encoder that encodes into its own buffer.
type jsonEncoder struct {
	buf     bytes.Buffer
	encoder *json.Encoder
}

// jsonEncoders holds the encoders of writeJSON between responses.
var jsonEncoders = sync.Pool{New: func() any {
	enc := new(jsonEncoder)
	enc.encoder = json.NewEncoder(&enc.buf)
	enc.encoder.SetEscapeHTML(true) // <, > and & as \u003c, \u003e and \u0026, as Marshal writes them
	return enc
}}

// maxPooledJSONBuffer bounds the buffer an encoder keeps when it returns to jsonEncoders, so that
// one large response does not hold its memory for good.
const maxPooledJSONBuffer = 64 << 10

// release empties enc and returns it to jsonEncoders, unless its buffer has grown too large.
func (enc *jsonEncoder) release() {
	if enc.buf.Cap() > maxPooledJSONBuffer {
		return
	}
	enc.buf.Reset()
	jsonEncoders.Put(enc)
}

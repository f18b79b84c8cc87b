package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/attrcache/attrcache"
)

// request is what an endpoint is given: the decoded input and the client's identity.
type request struct {
	cid string
	// in holds the body's keys with the query string's over them.
	in *input
	// body holds the body's keys alone (PATCH /zato/sso/user considers only those).
	body map[string]any
	// remoteAddr is the client's address (see remoteAddr); userAgent its User-Agent header.
	remoteAddr string
	userAgent  string
}

// readRequest reads the request's input. The body is parsed as a JSON object whatever its
// Content-Type says, for every verb; an empty body is {}. A body over maxBytes gives a 413, one
// that is not a JSON object a 400 E008002. Query-string parameters are added over the body's
// keys (the first value of a repeated parameter).
func readRequest(r *http.Request, w http.ResponseWriter, ex *exchange, maxBytes int64) (*request, error) {
	body, texts, err := decodeBody(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		return nil, err
	}
	merged := maps.Clone(body)
	for key, values := range r.URL.Query() {
		merged[key] = values[0]
		texts[key], _ = json.Marshal(values[0]) // a string always encodes
	}
	return &request{
		cid:        ex.cid,
		in:         &input{values: merged, texts: texts},
		body:       body,
		remoteAddr: ex.remoteAddr,
		userAgent:  r.UserAgent(),
	}, nil
}

// decodeBody decodes a JSON object: values holds each key's value decoded, numbers as
// json.Number, and texts the JSON text it was sent as.
func decodeBody(r io.Reader) (values map[string]any, texts map[string]json.RawMessage, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return nil, nil, errBodyTooLarge
		}
		return nil, nil, attrcache.BadRequest(attrcache.CodeInvalidInput, "the request body could not be read")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, map[string]json.RawMessage{}, nil
	}
	if err := decodeJSON(data, &texts); err != nil || texts == nil {
		return nil, nil, errNotAnObject
	}
	values = make(map[string]any, len(texts))
	for key, text := range texts {
		var value any
		if err := decodeJSON(text, &value); err != nil {
			return nil, nil, errNotAnObject // not reached: text is a value of the object just decoded
		}
		values[key] = value
	}
	return values, texts, nil
}

// decodeJSON decodes data, which must hold one JSON value and nothing after it, into v, numbers
// as json.Number.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

var errNotAnObject = attrcache.BadRequest(attrcache.CodeInvalidInput, "the request body is not a JSON object")

// remoteAddr returns the client's address: the first entry of X-Zato-Forwarded-For, else of
// X-Forwarded-For, else the connection's address. An entry that is not an IP address is skipped;
// "" when nothing is one.
func remoteAddr(r *http.Request) string {
	for _, header := range []string{"X-Zato-Forwarded-For", "X-Forwarded-For"} {
		first, _, _ := strings.Cut(r.Header.Get(header), ",")
		if addr, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
			return addr.String()
		}
	}
	if addrPort, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return addrPort.Addr().String()
	}
	return ""
}

// input gives typed access to a request's decoded keys. A key an endpoint does not read is
// ignored. The first problem an accessor meets (a required key absent: 400 E008003; a key of the
// wrong JSON type: 400 E008002 naming it) is kept and returned by Err, so an endpoint reads every
// key it needs and then checks once; accessors return zero values after a problem.
//
// Absent and null are the same to every accessor except Has and JSON. Query-string values are
// strings, so Bool and Int also accept "true"/"false"/"1"/"0" and decimal strings.
type input struct {
	values map[string]any
	// texts holds the JSON text of each key's value as it was sent; a query-string value is the
	// JSON string of its text.
	texts   map[string]json.RawMessage
	problem error
}

// Err returns the first problem met, or nil.
func (in *input) Err() error { return in.problem }

// Has reports whether key is present, null included.
func (in *input) Has(key string) bool {
	_, ok := in.values[key]
	return ok
}

func (in *input) fail(err error) {
	if in.problem == nil {
		in.problem = err
	}
}

func (in *input) wrongType(key, want string) {
	in.fail(attrcache.BadRequest(attrcache.CodeInvalidInput, "%s: want %s", key, want))
}

// require records E008003 when key is absent and reports whether it is present.
func (in *input) require(key string) bool {
	if !in.Has(key) {
		in.fail(attrcache.BadRequest(attrcache.CodeMissingInput, "%s is required", key))
		return false
	}
	return true
}

// OptionalString returns key's string, or nil when it is absent or null.
func (in *input) OptionalString(key string) *string {
	switch v := in.values[key].(type) {
	case nil:
		return nil
	case string:
		return &v
	}
	in.wrongType(key, "a string")
	return nil
}

// String returns key's string, "" when it is absent or null.
func (in *input) String(key string) string {
	if s := in.OptionalString(key); s != nil {
		return *s
	}
	return ""
}

// RequiredString returns key's string; absent is E008003, null is "".
func (in *input) RequiredString(key string) string {
	if !in.require(key) {
		return ""
	}
	return in.String(key)
}

// StringIfSet returns key's string, or fallback when key is absent, null or "".
func (in *input) StringIfSet(key, fallback string) string {
	if s := in.String(key); s != "" {
		return s
	}
	return fallback
}

// UST returns the caller's UST, sent as ust or as its alias current_ust (ust wins when both
// are sent; both must be strings); a missing UST is E008003 when required, else "".
func (in *input) UST(required bool) string {
	ust, alias := in.OptionalString("ust"), in.OptionalString("current_ust")
	switch {
	case in.Has("ust"):
		return deref(ust)
	case in.Has("current_ust"):
		return deref(alias)
	case required:
		in.require("ust")
	}
	return ""
}

// OptionalBool returns key's boolean, or nil when it is absent, null or "".
func (in *input) OptionalBool(key string) *bool {
	yes, no := true, false
	switch v := in.values[key].(type) {
	case nil:
		return nil
	case bool:
		return &v
	case string:
		switch strings.ToLower(v) {
		case "true", "1":
			return &yes
		case "false", "0":
			return &no
		case "":
			return nil
		}
	}
	in.wrongType(key, "a boolean")
	return nil
}

// Bool returns key's boolean, false when it is absent, null or "".
func (in *input) Bool(key string) bool {
	b := in.OptionalBool(key)
	return b != nil && *b
}

// JSON returns the JSON text of key's value as it was sent, whatever its type: null is "null";
// nil when key is absent.
func (in *input) JSON(key string) json.RawMessage {
	return in.texts[key]
}

// Int returns key's integer, 0 when it is absent or null.
func (in *input) Int(key string) int {
	var digits string
	switch v := in.values[key].(type) {
	case nil:
		return 0
	case json.Number:
		digits = v.String()
	case string:
		if v == "" {
			return 0
		}
		digits = v
	default:
		in.wrongType(key, "an integer")
		return 0
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		in.wrongType(key, "an integer")
		return 0
	}
	return n
}

// StringList returns key's list of strings, nil when it is absent or null. A lone string (as a
// query string sends it) is a list of one.
func (in *input) StringList(key string) []string {
	switch v := in.values[key].(type) {
	case nil:
		return nil
	case string:
		return []string{v}
	case []any:
		list := make([]string, len(v))
		for i, item := range v {
			s, ok := item.(string)
			if !ok {
				in.wrongType(key, "a list of strings")
				return nil
			}
			list[i] = s
		}
		return list
	}
	in.wrongType(key, "a list of strings")
	return nil
}

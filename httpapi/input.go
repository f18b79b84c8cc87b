package httpapi

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/attrcache/attrcache"
)

// request is what an endpoint is given: the decoded input and the client's identity.
type request struct {
	cid string
	// in holds the keys the endpoint reads: the body's, with the query string's over them.
	in *input
	// remoteAddr is the client's address (see remoteAddr); userAgent its User-Agent header.
	remoteAddr string
	userAgent  string
	// header is the request's headers, for the few endpoints that read one.
	header http.Header

	input input // in points here: one allocation for both
}

// readRequest reads the input spec says the endpoint reads. The body is parsed as a JSON object
// whatever its Content-Type says, for every verb; an empty body is {}. A body over spec.maxBytes
// gives a 413, one that is not a JSON object (or passes spec's bounds) a 400 E008002.
// Query-string parameters that spec reads are added over the body's keys (the first value of a
// repeated parameter), as strings. With reserved, the body's announced length has been reserved
// (see reserveBody) and is allocated at once; else at most maxBodyPrealloc of it.
func readRequest(r *http.Request, w http.ResponseWriter, ex *exchange, spec *inputSpec, reserved bool) (*request, error) {
	sizeHint := min(r.ContentLength, spec.maxBytes)
	if !reserved {
		sizeHint = min(sizeHint, maxBodyPrealloc)
	}
	data, err := readBody(http.MaxBytesReader(w, r.Body, spec.maxBytes), sizeHint)
	if err != nil {
		return nil, err
	}
	values, texts, err := decodeObject(data, spec)
	if err != nil {
		return nil, err
	}
	if r.URL.RawQuery != "" {
		for key, list := range r.URL.Query() {
			if spec.reads(key) {
				values[key] = list[0]
				texts[key], _ = json.Marshal(list[0]) // a string always encodes
			}
		}
	}
	req := &request{
		cid:        ex.cid,
		remoteAddr: ex.remoteAddr,
		userAgent:  r.UserAgent(),
		header:     r.Header,
		input:      input{values: values, texts: texts, spec: spec},
	}
	req.in = &req.input
	return req, nil
}

var errNotAnObject = attrcache.BadRequest(attrcache.CodeInvalidInput, "the request body is not a JSON object")

// forwardedHeaders are the headers that name the addresses a request was forwarded for, in the
// order they are read: the first one present is the one believed.
var forwardedHeaders = []string{"X-Zato-Forwarded-For", "X-Forwarded-For"}

// remoteAddr returns the client's address. It is the connection's peer unless that peer is inside
// one of trusted (the proxies in front of the service): then it is the right-most entry of
// X-Zato-Forwarded-For, else of X-Forwarded-For, that is not itself a trusted proxy, each proxy
// having appended the address it received the request from. A client can write any entries it
// likes at the left, but none that a trusted proxy appended. When every entry is trusted, the
// left-most is the client; an entry that is not an IP address ends the walk, and the last
// trusted hop is the client. "" when the peer's address does not parse.
func remoteAddr(r *http.Request, trusted []netip.Prefix) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	client := peer.Addr().Unmap()
	if !isTrustedProxy(client, trusted) {
		return client.String()
	}
	for _, header := range forwardedHeaders {
		values := r.Header.Values(header)
		if len(values) == 0 {
			continue
		}
		for i := len(values) - 1; i >= 0; i-- {
			entries := values[i]
			for entries != "" {
				var entry string
				if comma := strings.LastIndexByte(entries, ','); comma >= 0 {
					entries, entry = entries[:comma], entries[comma+1:]
				} else {
					entries, entry = "", entries
				}
				if entry = strings.TrimSpace(entry); entry == "" {
					continue
				}
				hop, ok := parseForwardedAddr(entry)
				if !ok {
					return client.String()
				}
				client = hop
				if !isTrustedProxy(hop, trusted) {
					return client.String()
				}
			}
		}
		break
	}
	return client.String()
}

// parseForwardedAddr reads one entry of a forwarded header: an IP address, with or without a
// port (IPv6 then in brackets).
func parseForwardedAddr(entry string) (netip.Addr, bool) {
	if addr, err := netip.ParseAddr(entry); err == nil {
		return addr.Unmap(), true
	}
	if addrPort, err := netip.ParseAddrPort(entry); err == nil {
		return addrPort.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// isTrustedProxy reports whether addr is inside one of trusted.
func isTrustedProxy(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, prefix := range trusted {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
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
	// spec is what the endpoint declared it reads (nil: anything). Reading a key it does not
	// declare is a bug (the key was never decoded): it panics, which observe answers with a 500.
	spec *inputSpec
}

// value returns key's decoded value and whether it is present.
func (in *input) value(key string) (any, bool) {
	if in.spec != nil && !in.spec.reads(key) {
		panic("httpapi: an endpoint reads " + key + ", which its route does not declare")
	}
	v, ok := in.values[key]
	return v, ok
}

// Value returns key's decoded value, nil when it is absent or null.
func (in *input) Value(key string) any {
	v, _ := in.value(key)
	return v
}

// Err returns the first problem met, or nil.
func (in *input) Err() error { return in.problem }

// Has reports whether key is present, null included.
func (in *input) Has(key string) bool {
	_, ok := in.value(key)
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
	if s, ok := in.lookupString(key); ok {
		return &s
	}
	return nil
}

// String returns key's string, "" when it is absent or null.
func (in *input) String(key string) string {
	s, _ := in.lookupString(key)
	return s
}

// lookupString returns key's string and true, or "" and false when it is absent, null or (a
// problem recorded) not a string. Unlike OptionalString it allocates nothing.
func (in *input) lookupString(key string) (string, bool) {
	switch v := in.Value(key).(type) {
	case nil:
		return "", false
	case string:
		return v, true
	}
	in.wrongType(key, "a string")
	return "", false
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
	ust, alias := in.String("ust"), in.String("current_ust")
	switch {
	case in.Has("ust"):
		return ust
	case in.Has("current_ust"):
		return alias
	case required:
		in.require("ust")
	}
	return ""
}

// OptionalBool returns key's boolean, or nil when it is absent, null or "".
func (in *input) OptionalBool(key string) *bool {
	if b, ok := in.lookupBool(key); ok {
		return &b
	}
	return nil
}

// Bool returns key's boolean, false when it is absent, null or "".
func (in *input) Bool(key string) bool {
	b, _ := in.lookupBool(key)
	return b
}

// lookupBool returns key's boolean and true, or false and false when it is absent, null, "" or
// (a problem recorded) not a boolean. Unlike OptionalBool it allocates nothing.
func (in *input) lookupBool(key string) (value, ok bool) {
	switch v := in.Value(key).(type) {
	case nil:
		return false, false
	case bool:
		return v, true
	case string:
		if v == "" {
			return false, false
		}
		if b, ok := parseBoolText(v); ok {
			return b, true
		}
	}
	in.wrongType(key, "a boolean")
	return false, false
}

// parseBoolText reads a boolean sent as a string, as a query string sends it: "true" or "1",
// "false" or "0", in any case.
func parseBoolText(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// JSON returns the JSON text of key's value as it was sent, whatever its type: null is "null";
// nil when key is absent.
func (in *input) JSON(key string) json.RawMessage {
	in.value(key)
	return in.texts[key]
}

// Int returns key's integer, 0 when it is absent or null.
func (in *input) Int(key string) int {
	var digits string
	switch v := in.Value(key).(type) {
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
	switch v := in.Value(key).(type) {
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

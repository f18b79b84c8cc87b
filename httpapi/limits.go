package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/attrcache/attrcache"
)

// What a request may cost before its caller is authenticated (CONTRACT.md §2): each route reads
// a body of bounded size, decodes only the keys its endpoint reads, to a bounded depth and count,
// and all requests together hold at most Options.MaxInflightBodyBytes of bodies.

// userBodyBytes bounds the body of the login, user, session and health endpoints, whose inputs
// are a few short strings.
const userBodyBytes = 64 << 10

// userMaxValues bounds the values decoded from such a body.
const userMaxValues = 1000

// maxDecodeDepth is the deepest decoded value: the body's object (1), a key's value (2), an
// item of data (3) and the item's name, expiration or encrypt (4). Attribute values are never
// decoded, so they may nest as deep as JSON allows.
const maxDecodeDepth = 4

// attrItemKeys are the members decoded in an item of an attribute call's data; value and any
// other member are kept as their text.
var attrItemKeys = map[string]bool{"name": true, "expiration": true, "encrypt": true, "if_version": true}

// attrMaxValues bounds the values decoded from an attribute call's body: twice what a data list
// of attrcache.MaxAttrItems items with every decoded member takes, so that sso, not the decoder,
// reports a list over the item limit.
var attrMaxValues = 2 * attrcache.MaxAttrItems * (1 + len(attrItemKeys))

// attrItemOverheadBytes bounds what an item of data takes besides its value: its name (each byte
// \u-escaped at worst), the keys and the punctuation.
const attrItemOverheadBytes = 6*attrcache.MaxAttrNameBytes + 256

// bodyReservationWait bounds how long a request waits for its share of
// Options.MaxInflightBodyBytes before it is answered 503 E008004. A waiting request holds only
// its goroutine and headers (its body is not read yet), so a short wait absorbs a burst of
// large writes; past it, the client is better told to retry (or sent to another instance).
const bodyReservationWait = 2 * time.Second

// userInput returns the input spec of an endpoint that reads keys, each decoded.
func (s *server) userInput(keys ...string) *inputSpec {
	return &inputSpec{
		keys:      keySet(keys, nil),
		maxBytes:  min(userBodyBytes, s.maxBodyBytes),
		maxDepth:  maxDecodeDepth,
		maxValues: userMaxValues,
	}
}

// attrInput returns the input spec of an attribute endpoint that reads keys: value is kept as
// its text, the others decoded, and the body may hold a data list of attrcache.MaxAttrItems
// items with values of the configured limit (at most Options.MaxBodyBytes).
func (s *server) attrInput(keys ...string) *inputSpec {
	return &inputSpec{
		keys:      keySet(keys, map[string]keyUse{"value": keyText}),
		itemKeys:  attrItemKeys,
		maxBytes:  min(s.attrBodyBytes(), s.maxBodyBytes),
		maxDepth:  maxDecodeDepth,
		maxValues: attrMaxValues,
	}
}

// attrBodyBytes is the largest body a valid attribute call sends: a full data list of values of
// the largest size, plus the caller's keys.
func (s *server) attrBodyBytes() int64 {
	return int64(attrcache.MaxAttrItems)*int64(s.maxAttrValueBytes+attrItemOverheadBytes) + userBodyBytes
}

// keySet returns the key set of keys, each decoded unless uses says otherwise.
func keySet(keys []string, uses map[string]keyUse) map[string]keyUse {
	set := make(map[string]keyUse, len(keys))
	for _, key := range keys {
		set[key] = keyDecoded
		if use, ok := uses[key]; ok {
			set[key] = use
		}
	}
	return set
}

var errBusy = &transportError{http.StatusServiceUnavailable, &attrcache.Error{
	Kind: attrcache.KindUnavailable, Code: attrcache.CodeInternalError,
	Message: "too many large requests at once: retry later"}}

// reserveBody reserves, from Options.MaxInflightBodyBytes, what the request's body may take: its
// announced length, or without one the route's bound; nothing for an empty body. A body
// announced over the route's bound is errBodyTooLarge at once, unread. A request that gets no
// reservation within bodyReservationWait is errBusy. release gives the reservation back.
func (s *server) reserveBody(r *http.Request, spec *inputSpec) (release func(), err error) {
	n := r.ContentLength
	switch {
	case n == 0:
		return func() {}, nil
	case n > spec.maxBytes:
		return nil, errBodyTooLarge
	case n < 0:
		n = spec.maxBytes
	}
	if s.inflightBodies == nil {
		return func() {}, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), bodyReservationWait)
	defer cancel()
	if err := s.inflightBodies.Acquire(ctx, n); err != nil {
		return nil, errBusy
	}
	return func() { s.inflightBodies.Release(n) }, nil
}

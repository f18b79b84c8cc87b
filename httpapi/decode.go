package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"net/http"
	"unicode/utf8"

	"github.com/attrcache/attrcache"
)

// readBody reads a request body whole. sizeHint is the body's announced length (its
// Content-Length; 0 or less when unknown), which sizes the first buffer; the caller bounds it
// (see maxBodyPrealloc). A body over the limit of an http.MaxBytesReader is errBodyTooLarge; any
// other read failure a 400 E008002.
func readBody(r io.Reader, sizeHint int64) ([]byte, error) {
	size := 512
	if sizeHint > 0 {
		// One byte more than announced, so that the read that meets the end needs no growth.
		size = int(sizeHint + 1)
	}
	data := make([]byte, 0, size)
	for {
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
				return nil, errBodyTooLarge
			}
			return nil, attrcache.BadRequest(attrcache.CodeInvalidInput, "the request body could not be read")
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)] // grows the buffer
		}
	}
}

// maxBodyPrealloc bounds the buffer that a body's announced length alone makes readBody
// allocate when the body bytes in flight are not bounded (Options.MaxInflightBodyBytes): a
// client that announces a large body must send it before it costs more. Within that bound, the
// announced length is reserved before the body is read, and allocated at once.
const maxBodyPrealloc = 64 << 10

// inputSpec is what an endpoint reads of a request: the keys it reads, and how much a request
// may cost before the endpoint sees it. Keys it does not read are not decoded, so a hostile
// body costs a syntax check and no allocation beyond its bytes.
type inputSpec struct {
	// keys holds every key the endpoint reads, top level; nil decodes every key.
	keys map[string]keyUse
	// itemKeys holds the members decoded in an object nested in a decoded value (an item of an
	// attribute call's data); any other member is kept as its JSON text (a json.RawMessage). nil
	// decodes every member.
	itemKeys map[string]bool
	// maxBytes bounds the body.
	maxBytes int64
	// maxDepth bounds the nesting of decoded values (the body's object is depth 1, its keys'
	// values depth 2); maxValues bounds how many values are decoded in all. 0 is no bound.
	maxDepth, maxValues int
}

// keyUse is how an endpoint uses one of its keys.
type keyUse uint8

const (
	// keyDecoded: the value is decoded (see decodeObject).
	keyDecoded keyUse = iota
	// keyText: the endpoint reads the value as its JSON text alone (input.JSON), so it is not
	// decoded; input's values holds the text as a json.RawMessage.
	keyText
)

// reads reports whether the endpoint reads key.
func (spec *inputSpec) reads(key string) bool {
	if spec.keys == nil {
		return true
	}
	_, ok := spec.keys[key]
	return ok
}

// decodeObject decodes a request body that must be one JSON object: values holds each key that
// spec reads, decoded as a json.Decoder with UseNumber decodes into an any (objects as
// map[string]any, arrays as []any, numbers as json.Number) but for what spec keeps as text, and
// texts the JSON text each of those values was sent as. A repeated key keeps its last value. A
// body of white space alone is {}; any other body that is not a JSON object is errNotAnObject;
// decoded values nested deeper than spec.maxDepth or more than spec.maxValues of them are a 400
// E008002 (errTooDeep, errTooManyValues).
//
// The texts share data's memory (each capped at its own end, so appending to one copies it);
// every decoded string is a copy, so that a string an endpoint keeps does not hold the body.
func decodeObject(data []byte, spec *inputSpec) (values map[string]any, texts map[string]json.RawMessage, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]any{}, map[string]json.RawMessage{}, nil
	}
	// json.Valid applies encoding/json's own syntax rules (its nesting limit included), so the
	// walk below accepts exactly what a json.Decoder accepts and meets only well-formed JSON.
	if !json.Valid(data) {
		return nil, nil, errNotAnObject
	}
	w := jsonWalker{data: data, spec: spec}
	w.skipSpace()
	if w.peek() != '{' {
		return nil, nil, errNotAnObject // null, an array, a string, a number or a boolean
	}
	values, texts = make(map[string]any), make(map[string]json.RawMessage)
	w.depth = 1
	w.topMembers(values, texts)
	if w.err != nil {
		return nil, nil, w.err
	}
	return values, texts, nil
}

var (
	errTooDeep       = attrcache.BadRequest(attrcache.CodeInvalidInput, "the request body nests its values too deeply")
	errTooManyValues = attrcache.BadRequest(attrcache.CodeInvalidInput, "the request body holds too many values")
)

// jsonWalker decodes well-formed JSON text (json.Valid accepts it) from data[pos:]. Its
// methods do not check the syntax: on other text their results are meaningless. With a spec, it
// decodes what the spec says and stops at its first bound (err).
type jsonWalker struct {
	data []byte
	pos  int

	spec   *inputSpec
	depth  int   // of the value being decoded
	values int   // decoded so far
	err    error // a bound of spec was passed: the walk stopped
}

// countValue records one more decoded value at the current depth and reports whether the
// walk may go on.
func (w *jsonWalker) countValue() bool {
	if w.err != nil {
		return false
	}
	if w.spec == nil {
		return true
	}
	w.values++
	switch {
	case w.spec.maxValues > 0 && w.values > w.spec.maxValues:
		w.err = errTooManyValues
	case w.spec.maxDepth > 0 && w.depth > w.spec.maxDepth:
		w.err = errTooDeep
	}
	return w.err == nil
}

// topMembers decodes the members of the body's object that starts at pos: into values, the
// keys spec reads, and into texts their JSON text. Other keys are skipped.
func (w *jsonWalker) topMembers(values map[string]any, texts map[string]json.RawMessage) {
	w.pos++
	if w.skipSpace(); w.peek() == '}' {
		w.pos++
		return
	}
	for {
		w.skipSpace()
		key := w.key()
		w.skipSpace()
		w.pos++ // ':'
		w.skipSpace()
		start := w.pos
		use, read := keyDecoded, true
		if w.spec != nil && w.spec.keys != nil {
			use, read = w.spec.keys[key]
		}
		switch {
		case !read:
			w.skipValue()
		case use == keyText:
			w.skipValue()
			values[key] = json.RawMessage(w.data[start:w.pos:w.pos])
			texts[key] = w.data[start:w.pos:w.pos]
		default:
			w.depth++
			values[key] = w.value()
			w.depth--
			if w.err != nil {
				return
			}
			texts[key] = w.data[start:w.pos:w.pos]
		}
		w.skipSpace()
		if w.next() == '}' {
			return
		}
	}
}

func (w *jsonWalker) peek() byte { return w.data[w.pos] }

func (w *jsonWalker) next() byte {
	w.pos++
	return w.data[w.pos-1]
}

func (w *jsonWalker) skipSpace() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// value decodes the value that starts at pos, at depth, and moves past it; nil once err is set.
func (w *jsonWalker) value() any {
	if !w.countValue() {
		return nil
	}
	switch w.peek() {
	case '{':
		return w.object()
	case '[':
		return w.array()
	case '"':
		return w.string()
	case 't':
		w.pos += len("true")
		return true
	case 'f':
		w.pos += len("false")
		return false
	case 'n':
		w.pos += len("null")
		return nil
	}
	return w.number()
}

// object decodes a nested object: the members spec's itemKeys holds, and every other member as
// its JSON text (sharing data's memory, capped at its end).
func (w *jsonWalker) object() map[string]any {
	obj := make(map[string]any)
	w.pos++
	if w.skipSpace(); w.peek() == '}' {
		w.pos++
		return obj
	}
	w.depth++
	defer func() { w.depth-- }()
	for {
		w.skipSpace()
		key := w.key()
		w.skipSpace()
		w.pos++ // ':'
		w.skipSpace()
		if w.spec == nil || w.spec.itemKeys == nil || w.spec.itemKeys[key] {
			obj[key] = w.value()
			if w.err != nil {
				return nil
			}
		} else {
			start := w.pos
			w.skipValue()
			obj[key] = json.RawMessage(w.data[start:w.pos:w.pos])
		}
		w.skipSpace()
		if w.next() == '}' {
			return obj
		}
	}
}

// array decodes an array; an empty one is an empty, non-nil slice, as encoding/json gives it.
func (w *jsonWalker) array() []any {
	w.pos++
	if w.skipSpace(); w.peek() == ']' {
		w.pos++
		return []any{}
	}
	list := make([]any, 0, 4) // short lists need no growth
	w.depth++
	defer func() { w.depth-- }()
	for {
		w.skipSpace()
		list = append(list, w.value())
		if w.err != nil {
			return nil
		}
		w.skipSpace()
		if w.next() == ']' {
			return list
		}
	}
}

func (w *jsonWalker) number() json.Number {
	start := w.pos
	for w.pos < len(w.data) && isNumberByte(w.data[w.pos]) {
		w.pos++
	}
	return json.Number(w.data[start:w.pos])
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// string decodes the string that starts at pos.
func (w *jsonWalker) string() string {
	start := w.pos
	content, plain := w.skipString()
	if plain {
		return string(content)
	}
	return w.unquote(start)
}

// key decodes an object's key: as string, but a key that clients send often is not copied.
func (w *jsonWalker) key() string {
	start := w.pos
	content, plain := w.skipString()
	if plain {
		if key, ok := commonKeys[string(content)]; ok {
			return key
		}
		return string(content)
	}
	return w.unquote(start)
}

// skipString moves past the string that starts at pos and returns the bytes between its
// quotes. plain reports that they are the string itself: no escape and valid UTF-8.
func (w *jsonWalker) skipString() (content []byte, plain bool) {
	start := w.pos + 1
	escaped := false
	for w.pos = start; ; w.pos++ {
		switch w.data[w.pos] {
		case '\\':
			escaped = true
			w.pos++ // the escaped byte; \u's hex digits need no care
		case '"':
			content = w.data[start:w.pos]
			w.pos++
			return content, !escaped && utf8.Valid(content)
		}
	}
}

// unquote decodes the string from start to pos with encoding/json itself, for the strings
// whose escapes or invalid UTF-8 (which becomes U+FFFD) need its rules.
func (w *jsonWalker) unquote(start int) string {
	var s string
	_ = json.Unmarshal(w.data[start:w.pos], &s) // cannot fail on a well-formed string
	return s
}

// arrayElements yields the index and the JSON text of each element of array, a well-formed JSON
// array (json.Valid accepts it), in order. Each text shares array's memory, capped at its end.
func arrayElements(array []byte) iter.Seq2[int, json.RawMessage] {
	return func(yield func(int, json.RawMessage) bool) {
		w := jsonWalker{data: array}
		w.skipSpace()
		w.pos++ // '['
		if w.skipSpace(); w.peek() == ']' {
			return
		}
		for i := 0; ; i++ {
			w.skipSpace()
			start := w.pos
			w.skipValue()
			if !yield(i, w.data[start:w.pos:w.pos]) {
				return
			}
			w.skipSpace()
			if w.next() == ']' {
				return
			}
		}
	}
}

// memberText returns the JSON text of key's value in object, a well-formed JSON object (of a
// repeated key, the last value, as decoding keeps it), sharing object's memory, capped at its
// end; nil when key is absent. Keys are compared decoded.
func memberText(object []byte, key string) json.RawMessage {
	w := jsonWalker{data: object}
	w.skipSpace()
	w.pos++ // '{'
	if w.skipSpace(); w.peek() == '}' {
		return nil
	}
	var text json.RawMessage
	for {
		w.skipSpace()
		match := w.keyIs(key)
		w.skipSpace()
		w.pos++ // ':'
		w.skipSpace()
		start := w.pos
		w.skipValue()
		if match {
			text = w.data[start:w.pos:w.pos]
		}
		w.skipSpace()
		if w.next() == '}' {
			return text
		}
	}
}

// keyIs moves past the object key that starts at pos and reports whether it is key, decoded.
func (w *jsonWalker) keyIs(key string) bool {
	start := w.pos
	content, plain := w.skipString()
	if plain {
		return string(content) == key
	}
	return w.unquote(start) == key
}

// skipValue moves past the value that starts at pos without decoding it.
func (w *jsonWalker) skipValue() {
	switch w.peek() {
	case '{', '[':
		for depth := 0; ; {
			switch w.next() {
			case '"':
				w.pos--
				w.skipQuoted()
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return
				}
			}
		}
	case '"':
		w.skipQuoted()
	case 't':
		w.pos += len("true")
	case 'n':
		w.pos += len("null")
	case 'f':
		w.pos += len("false")
	default:
		for w.pos < len(w.data) && isNumberByte(w.data[w.pos]) {
			w.pos++
		}
	}
}

// skipQuoted moves past the string that starts at pos.
func (w *jsonWalker) skipQuoted() {
	for w.pos++; ; w.pos++ {
		switch w.data[w.pos] {
		case '\\':
			w.pos++ // the escaped byte
		case '"':
			w.pos++
			return
		}
	}
}

// commonKeys are keys that many requests send, to spare decoding a copy of each.
var commonKeys = func() map[string]string {
	keys := make(map[string]string)
	for _, key := range []string{
		"ust", "current_ust", "current_app", "target_ust", "user_id", "name", "value", "data",
		"expiration", "encrypt", "decrypt", "username", "password", "totp_code",
		"new_password", "remote_addr", "user_agent",
	} {
		keys[key] = key
	}
	return keys
}()

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// The attribute endpoints (CONTRACT.md §4, zato-sso-reference.md §2.6–2.7) take current_app and
// the caller's UST (ust or current_ust), both required; user_id (user attributes; absent is the
// caller) or target_ust (session attributes); and, as the operation needs them, name, value, data,
// expiration, encrypt and decrypt.
//
// The checks come in Zato's order: first a known key of the wrong JSON type (400 E008002) or a
// missing required key (400 E008003); then, in sso, the app, the caller and their right to the
// attributes; then the shape of name, value and data (403 E008002); then the operation itself.

// attrScope is whose attributes a family of paths acts on.
type attrScope struct {
	// ownerKey is the input that names the owner: user_id for a user's attributes, target_ust
	// for a session's.
	ownerKey string
	// open returns the owner's attributes as the caller of ust may use them, checked by the
	// first call: sso.API.UserAttrsDeferred or sso.API.SessionAttrsDeferred. A request makes one
	// call, so its checks and a cached read cost one Redis round trip in all.
	open func(cid, owner, ust, app, remoteAddr string) *sso.AttrAPI
}

// attrOp reads the input of one attribute operation from in and returns the action that
// performs it. A key of the wrong JSON type is recorded in in; an input of the wrong shape makes
// the action fail with a 403 E008002, so that it is reported only once the caller is let in.
type attrOp func(req *request) attrAction

// attrAction performs an attribute operation on attrs and returns the success reply.
type attrAction func(ctx context.Context, attrs *sso.AttrAPI) (reply, error)

// failing returns the action that fails with err once the caller is let in.
func failing(err error) attrAction {
	return func(ctx context.Context, attrs *sso.AttrAPI) (reply, error) {
		if checkErr := attrs.Check(ctx); checkErr != nil {
			return nil, checkErr
		}
		return nil, err
	}
}

// attrEndpoint returns the endpoint of op on the attributes of scope.
func (s *server) attrEndpoint(scope attrScope, op attrOp) endpoint {
	return func(ctx context.Context, req *request) (reply, error) {
		who := readCaller(req)
		owner := req.in.String(scope.ownerKey)
		action := op(req)
		if err := req.in.Err(); err != nil {
			return nil, err
		}
		rep, err := action(ctx, scope.open(req.cid, owner, who.ust, who.app, who.remoteAddr))
		s.metrics.ObserveCASConflicts(casConflicts(rep, err))
		return rep, err
	}
}

// casConflicts returns how many writes an attribute call's answer refused with E009101.
func casConflicts(rep reply, err error) int {
	if err != nil {
		if attrcache.CodeOf(err) == attrcache.CodeVersionMismatch {
			return 1
		}
		return 0
	}
	n := 0
	if w, ok := rep.(*attrWriteReply); ok {
		for _, item := range w.Result {
			if len(item.SubStatus) == 1 && item.SubStatus[0] == attrcache.CodeVersionMismatch {
				n++
			}
		}
	}
	return n
}

// manyItemWriteMethod is a many-item write of sso.AttrAPI, as a method expression.
type manyItemWriteMethod func(attrs *sso.AttrAPI, ctx context.Context, items []sso.AttrItem, opts ...sso.AttrOption) error

// The write operations: PUT (set), POST (create) and PATCH (update).
var (
	setAttrs    = attrWriteOp((*sso.AttrAPI).SetMany)
	createAttrs = attrWriteOp((*sso.AttrAPI).CreateMany)
	updateAttrs = attrWriteOp((*sso.AttrAPI).UpdateMany)
)

// attrWriteOp returns the operation that writes the attributes readAttrItems reads, with the
// top-level expiration, encrypt and if_version (or If-Match, for the single form) as the defaults
// of every item, and answers writeReply's answer.
func attrWriteOp(write manyItemWriteMethod) attrOp {
	return func(req *request) attrAction {
		in := req.in
		opts := []sso.AttrOption{sso.Expiration(int64(in.Int("expiration"))), sso.Encrypt(in.Bool("encrypt"))}
		items, single, err := readAttrItems(in)
		if err != nil {
			return failing(err)
		}
		return writeAction(req, single, items, true, opts, func(ctx context.Context, attrs *sso.AttrAPI, opts []sso.AttrOption) error {
			return write(attrs, ctx, items, opts...)
		})
	}
}

// deleteAttrs is DELETE: it deletes the attributes readDeleteItems reads, each if its if_version
// (or the top-level one, or If-Match for the single form) matches, and answers the ok envelope,
// with each item's result when atomic is false.
func deleteAttrs(req *request) attrAction {
	items, single, err := readDeleteItems(req.in)
	if err != nil {
		return failing(err)
	}
	return writeAction(req, single, items, false, nil, func(ctx context.Context, attrs *sso.AttrAPI, opts []sso.AttrOption) error {
		return attrs.DeleteItems(ctx, items, opts...)
	})
}

// writeAction returns the action that calls write with opts and the options of a write's
// request (its condition, atomic and the results), and answers: with versions (a write, not a
// delete), the new version of the single form or the versions of the many form; with atomic
// false, each item's result, and status warning when any failed.
func writeAction(req *request, single bool, items []sso.AttrItem, versions bool, opts []sso.AttrOption,
	write func(ctx context.Context, attrs *sso.AttrAPI, opts []sso.AttrOption) error) attrAction {
	ifVersion, err := readIfVersion(req, single)
	if err != nil {
		return failing(err)
	}
	if ifVersion != nil {
		if *ifVersion < 0 {
			return failing(attrcache.InvalidInput("if_version must not be negative"))
		}
		opts = append(opts, sso.IfVersion(*ifVersion))
	}
	atomic := req.in.OptionalBool("atomic")
	if atomic != nil && !*atomic {
		opts = append(opts, sso.Atomic(false))
	}
	var results []sso.AttrResult
	opts = append(opts, sso.Results(&results))
	return func(ctx context.Context, attrs *sso.AttrAPI) (reply, error) {
		err := write(ctx, attrs, opts)
		if err != nil && !errors.Is(err, sso.ErrSomeItemsFailed) {
			return nil, err
		}
		r := &attrWriteReply{}
		if atomic != nil && !*atomic {
			r.Result = wireItemResults(results)
			r.SubStatus = itemCodes(results)
			if len(r.SubStatus) > 0 {
				r.Status = statusWarning
			}
		}
		if !versions {
			return r, nil
		}
		written := make(map[string]int64, len(results))
		for _, res := range results {
			if res.Version != 0 {
				written[res.Name] = res.Version
			}
		}
		if single {
			if v, ok := written[items[0].Name]; ok {
				r.Version = &v
			}
		} else {
			r.Versions = &written
		}
		return r, nil
	}
}

// wireItemResults returns results on the wire.
func wireItemResults(results []sso.AttrResult) []wireItemResult {
	wire := make([]wireItemResult, len(results))
	for i, res := range results {
		item := wireItemResult{Name: res.Name, Status: statusOK, SubStatus: []string{}}
		if res.Version != 0 {
			item.Version = &res.Version
		}
		if res.Err != nil {
			e := attrcache.AsError(res.Err)
			item.Status, item.SubStatus, item.Message = statusError, []string{e.Code}, e.Message
		}
		wire[i] = item
	}
	return wire
}

// itemCodes returns the distinct codes of the items that failed, in the order they first come.
func itemCodes(results []sso.AttrResult) []string {
	var codes []string
	for _, res := range results {
		if res.Err != nil {
			if code := attrcache.CodeOf(res.Err); !slices.Contains(codes, code) {
				codes = append(codes, code)
			}
		}
	}
	return codes
}

// getAttrs is GET: for the single form, found and the attribute's keys when it is found; for the
// many form, result keyed by every name asked for, null for one that is not found. Values are
// decrypted unless decrypt is false.
func getAttrs(req *request) attrAction {
	in := req.in
	decrypt := in.OptionalBool("decrypt")
	names, single, err := readAttrNames(in)
	if err != nil {
		return failing(err)
	}
	return func(ctx context.Context, attrs *sso.AttrAPI) (reply, error) {
		values, err := attrs.GetMany(ctx, names, sso.Decrypt(decrypt == nil || *decrypt))
		if err != nil {
			return nil, err
		}
		if single {
			v := values[names[0]]
			return &attrReply{Found: v != nil, wireAttr: newWireAttr(v)}, nil
		}
		result := make(map[string]*wireAttr, len(values))
		for name, v := range values {
			result[name] = newWireAttr(v)
		}
		return &resultReply[map[string]*wireAttr]{Result: result}, nil
	}
}

// attrsExist is GET exists: result is a boolean for the single form, {name: boolean} for the
// many form.
func attrsExist(req *request) attrAction {
	in := req.in
	names, single, err := readAttrNames(in)
	if err != nil {
		return failing(err)
	}
	return func(ctx context.Context, attrs *sso.AttrAPI) (reply, error) {
		found, err := attrs.ExistsMany(ctx, names)
		if err != nil {
			return nil, err
		}
		if single {
			return &resultReply[bool]{Result: found[names[0]]}, nil
		}
		return &resultReply[map[string]bool]{Result: found}, nil
	}
}

// attrNames is GET names: result lists the names of the live attributes in byte order.
func attrNames(*request) attrAction {
	return func(ctx context.Context, attrs *sso.AttrAPI) (reply, error) {
		names, err := attrs.Names(ctx)
		if err != nil {
			return nil, err
		}
		return &resultReply[[]string]{Result: names}, nil
	}
}

var (
	errNoNameNorData = attrcache.InvalidInput("name or data is required")
	errNoValue       = attrcache.InvalidInput("value is required")
	errWriteData     = attrcache.InvalidInput("data must be a list of objects with name and value")
	errReadData      = attrcache.InvalidInput("data must be a name or a list of names")
)

// readAttrItems reads the attributes of a write: name and value when name is present (the
// single form), else data, a list of objects with name and value and, optionally, expiration,
// encrypt and if_version (null is absent; absent takes the top-level key). Values are kept as the
// JSON text they were sent as. What sso does not check itself (a missing name or value, data or
// an item of the wrong shape) is a 403 E008002; so are the limits, which sso checks.
func readAttrItems(in *input) (items []sso.AttrItem, single bool, err error) {
	if in.Has("name") {
		name := in.String("name")
		value := in.JSON("value")
		if value == nil {
			return nil, true, errNoValue
		}
		return []sso.AttrItem{{Name: name, Value: value}}, true, nil
	}
	var list []any
	switch data := in.Value("data").(type) {
	case nil:
		return nil, false, errNoNameNorData
	case []any:
		list = data
	default:
		return nil, false, errWriteData
	}
	// The list was decoded from data's text, whose elements are in the same order: each item's
	// keys come from the one, its value's text from the other.
	items = make([]sso.AttrItem, len(list))
	for i, text := range arrayElements(in.JSON("data")) {
		item, err := readAttrItem(i, list[i], text)
		if err != nil {
			return nil, false, err
		}
		items[i] = item
	}
	return items, false, nil
}

// readAttrItem reads the item at index of a write's data list, given as decoded and as text.
func readAttrItem(index int, decoded any, text json.RawMessage) (sso.AttrItem, error) {
	fields, ok := decoded.(map[string]any)
	if !ok { // null included
		return sso.AttrItem{}, attrcache.InvalidInput("data[%d] must be an object with name and value", index)
	}
	for _, key := range [...]string{"name", "value"} {
		if _, ok := fields[key]; !ok {
			return sso.AttrItem{}, attrcache.InvalidInput("data[%d]: %s is required", index, key)
		}
	}
	item := sso.AttrItem{Value: memberText(text, "value")}
	switch name := fields["name"].(type) {
	case nil:
	case string:
		item.Name = name
	default:
		return sso.AttrItem{}, wrongItemType(index, "name", "a string")
	}
	switch expiration := fields["expiration"].(type) {
	case nil:
	case json.Number:
		// As encoding/json decodes a number into an int64: an integer in its range.
		n, err := strconv.ParseInt(string(expiration), 10, 64)
		if err != nil {
			return sso.AttrItem{}, wrongItemType(index, "expiration", "an integer")
		}
		item.Expiration = &n
	default:
		return sso.AttrItem{}, wrongItemType(index, "expiration", "an integer")
	}
	switch encrypt := fields["encrypt"].(type) {
	case nil:
	case bool:
		item.Encrypt = &encrypt
	default:
		return sso.AttrItem{}, wrongItemType(index, "encrypt", "a boolean")
	}
	version, ok := itemVersion(fields["if_version"])
	if !ok {
		return sso.AttrItem{}, wrongItemType(index, "if_version", "an integer")
	}
	item.IfVersion = version
	return item, nil
}

// itemVersion reads an if_version member of an item: nil for null or absent; ok false when it is
// not an integer in int64's range.
func itemVersion(v any) (version *int64, ok bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case json.Number:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, false
		}
		return &n, true
	}
	return nil, false
}

// readIfVersion reads a write's top-level condition: if_version (an integer, or its digits as a
// query string sends them) and, for the single form, the If-Match header, a version as the ETag
// of GET shows it. Both given must agree. A header of another form is a 403 E008002.
func readIfVersion(req *request, single bool) (*int64, error) {
	var version *int64
	switch v := req.in.Value("if_version").(type) {
	case nil:
	case string:
		if v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				req.in.wrongType("if_version", "an integer")
				return nil, nil
			}
			version = &n
		}
	default:
		n, ok := itemVersion(v)
		if !ok {
			req.in.wrongType("if_version", "an integer")
			return nil, nil
		}
		version = n
	}
	match := req.header.Values("If-Match")
	if len(match) == 0 {
		return version, nil
	}
	if !single {
		return nil, attrcache.InvalidInput("If-Match applies to the single form (name); give each item of data its if_version")
	}
	matched, ok := parseIfMatch(match)
	switch {
	case !ok:
		return nil, attrcache.InvalidInput(`If-Match must be one version in quotes, as the ETag of GET gives it, such as "12"`)
	case version != nil && *version != matched:
		return nil, attrcache.InvalidInput("if_version and If-Match name different versions")
	}
	return &matched, nil
}

// parseIfMatch reads If-Match header values naming one version: "12" (or W/"12", or 12).
func parseIfMatch(values []string) (int64, bool) {
	if len(values) != 1 {
		return 0, false
	}
	tag := strings.TrimPrefix(strings.TrimSpace(values[0]), "W/")
	if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
		tag = tag[1 : len(tag)-1]
	}
	n, err := strconv.ParseInt(tag, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// wrongItemType is the error of an item's key of the wrong JSON type.
func wrongItemType(index int, key, want string) error {
	return attrcache.InvalidInput("data[%d].%s: want %s", index, key, want)
}

// readDeleteItems reads the names of a delete as readAttrNames does, each with the if_version
// of its object in the data list, if any.
func readDeleteItems(in *input) (items []sso.AttrItem, single bool, err error) {
	names, single, err := readAttrNames(in)
	if err != nil {
		return nil, false, err
	}
	items = make([]sso.AttrItem, len(names))
	for i, name := range names {
		items[i].Name = name
	}
	if single {
		return items, true, nil
	}
	list, _ := in.Value("data").([]any)
	for i, item := range list {
		if obj, ok := item.(map[string]any); ok {
			version, ok := itemVersion(obj["if_version"])
			if !ok {
				return nil, false, wrongItemType(i, "if_version", "an integer")
			}
			items[i].IfVersion = version
		}
	}
	return items, false, nil
}

// readAttrNames reads the names of a read or a delete: name when it is present, or data as a bare
// name (both the single form, as in Zato); else data as a list of names, or of objects with a
// name (the many form). Data of another shape is a 403 E008002.
func readAttrNames(in *input) (names []string, single bool, err error) {
	if in.Has("name") {
		return []string{in.String("name")}, true, nil
	}
	switch data := in.Value("data").(type) {
	case nil:
		return nil, false, errNoNameNorData
	case string:
		return []string{data}, true, nil
	case []any:
		names := make([]string, len(data))
		for i, item := range data {
			name, ok := attrNameOf(item)
			if !ok {
				return nil, false, attrcache.InvalidInput("data[%d] must be a name or an object with a name", i)
			}
			names[i] = name
		}
		return names, false, nil
	}
	return nil, false, errReadData
}

// attrNameOf returns the name an item of a read's data list gives: the item itself or its name
// key.
func attrNameOf(item any) (string, bool) {
	if obj, ok := item.(map[string]any); ok {
		item = obj["name"]
	}
	name, ok := item.(string)
	return name, ok
}

package httpapi

import (
	"context"
	"encoding/json"
	"strconv"

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
type attrOp func(in *input) attrAction

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
		action := op(req.in)
		if err := req.in.Err(); err != nil {
			return nil, err
		}
		return action(ctx, scope.open(req.cid, owner, who.ust, who.app, who.remoteAddr))
	}
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
// top-level expiration and encrypt as the defaults of every item, and answers the ok envelope.
func attrWriteOp(write manyItemWriteMethod) attrOp {
	return func(in *input) attrAction {
		opts := []sso.AttrOption{sso.Expiration(int64(in.Int("expiration"))), sso.Encrypt(in.Bool("encrypt"))}
		items, err := readAttrItems(in)
		if err != nil {
			return failing(err)
		}
		return func(ctx context.Context, attrs *sso.AttrAPI) (reply, error) {
			if err := write(attrs, ctx, items, opts...); err != nil {
				return nil, err
			}
			return &envelope{}, nil
		}
	}
}

// deleteAttrs is DELETE: it deletes the attributes readAttrNames reads and answers the ok
// envelope.
func deleteAttrs(in *input) attrAction {
	names, _, err := readAttrNames(in)
	if err != nil {
		return failing(err)
	}
	return func(ctx context.Context, attrs *sso.AttrAPI) (reply, error) {
		if err := attrs.DeleteMany(ctx, names); err != nil {
			return nil, err
		}
		return &envelope{}, nil
	}
}

// getAttrs is GET: for the single form, found and the attribute's keys when it is found; for the
// many form, result keyed by every name asked for, null for one that is not found. Values are
// decrypted unless decrypt is false.
func getAttrs(in *input) attrAction {
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
func attrsExist(in *input) attrAction {
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
func attrNames(*input) attrAction {
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
// single form), else data, a list of objects with name and value and, optionally, expiration
// and encrypt (null is absent; absent takes the top-level key). Values are kept as the JSON text
// they were sent as. What sso does not check itself (a missing name or value, data or an item of
// the wrong shape) is a 403 E008002; so are the limits, which sso checks.
func readAttrItems(in *input) ([]sso.AttrItem, error) {
	if in.Has("name") {
		name := in.String("name")
		value := in.JSON("value")
		if value == nil {
			return nil, errNoValue
		}
		return []sso.AttrItem{{Name: name, Value: value}}, nil
	}
	var list []any
	switch data := in.Value("data").(type) {
	case nil:
		return nil, errNoNameNorData
	case []any:
		list = data
	default:
		return nil, errWriteData
	}
	// The list was decoded from data's text, whose elements are in the same order: each item's
	// keys come from the one, its value's text from the other.
	items := make([]sso.AttrItem, len(list))
	for i, text := range arrayElements(in.JSON("data")) {
		item, err := readAttrItem(i, list[i], text)
		if err != nil {
			return nil, err
		}
		items[i] = item
	}
	return items, nil
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
	return item, nil
}

// wrongItemType is the error of an item's key of the wrong JSON type.
func wrongItemType(index int, key, want string) error {
	return attrcache.InvalidInput("data[%d].%s: want %s", index, key, want)
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

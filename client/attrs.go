package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Attrs are the attributes of one owner as one session may use them: a user's
// ([Session.UserAttrs]) or a session's ([Session.SessionAttrs]). Single calls send name; the
// Many calls send data, and are all-or-nothing unless [Atomic](false) says otherwise.
type Attrs struct {
	s                           *Session
	path, existsPath, namesPath string
	ownerKey, owner             string // user_id or target_ust, not sent when owner is empty
}

// UserAttrs returns the attributes of the user userID; "" is the caller's own. A regular user
// may use only their own (others answer E005001).
func (s *Session) UserAttrs(userID string) *Attrs {
	return &Attrs{s: s, path: pathUserAttr, existsPath: pathUserAttrExists, namesPath: pathUserAttrNames,
		ownerKey: "user_id", owner: userID}
}

// SessionAttrs returns the attributes of the session targetUST, which end with it. The caller
// is a super-user or that session's owner.
func (s *Session) SessionAttrs(targetUST string) *Attrs {
	return &Attrs{s: s, path: pathSessionAttr, existsPath: pathSessionAttrExists, namesPath: pathSessionAttrNames,
		ownerKey: "target_ust", owner: targetUST}
}

// Attr is an attribute as the server answers it.
type Attr struct {
	Name string `json:"name"`
	// Value is the JSON value as it was set; with Decrypt(false), an encrypted attribute's is
	// the stored ciphertext as a JSON string.
	Value          json.RawMessage `json:"value"`
	CreationTime   Time            `json:"creation_time"`
	LastModified   Time            `json:"last_modified"`
	ExpirationTime Time            `json:"expiration_time"` // [Never] when it never expires
	IsEncrypted    bool            `json:"is_encrypted"`
	// Version grows with every write of the attribute; [IfVersion] takes it back. 0 from a
	// server that answers no versions (Zato).
	Version int64 `json:"version"`
}

// Decode unmarshals the attribute's value into v.
func (a *Attr) Decode(v any) error { return json.Unmarshal(a.Value, v) }

// Item is one attribute of a many write, or of [Attrs.DeleteItems] (which reads Name and
// IfVersion). Its zero ExpiresIn and nil Encrypt and IfVersion take the call's options.
type Item struct {
	Name      string
	Value     any // any value encoding/json encodes; a json.RawMessage is sent as it is
	ExpiresIn time.Duration
	Encrypt   *bool
	IfVersion *int64 // the item's own condition, as [IfVersion] says
}

// AttrOption is an option of an attribute call.
type AttrOption func(*attrOptions)

type attrOptions struct {
	expiresIn time.Duration
	encrypt   *bool
	decrypt   *bool
	ifVersion *int64
	atomic    *bool
	results   *[]ItemResult
}

// ExpiresIn makes the written attributes expire d after the server receives the call. d is
// whole seconds; 0 means never on create and "as it is" on update.
func ExpiresIn(d time.Duration) AttrOption { return func(o *attrOptions) { o.expiresIn = d } }

// Encrypt says whether the written attributes are stored encrypted.
func Encrypt(on bool) AttrOption { return func(o *attrOptions) { o.encrypt = &on } }

// Decrypt says whether a read decrypts encrypted values (the server's default: true).
func Decrypt(on bool) AttrOption { return func(o *attrOptions) { o.decrypt = &on } }

// IfVersion makes a write or delete conditional (compare-and-set): each item applies only when
// its attribute's current version ([Attr.Version]) is version, 0 meaning that the attribute does
// not exist. A mismatch fails the call with an [*Error] of HTTP 409 and [CodeVersionMismatch],
// nothing written; with [Atomic](false), that item alone fails. An [Item]'s own IfVersion wins.
// A conditional call is never retried: sent again after the first had applied, it would answer
// E009101.
func IfVersion(version int64) AttrOption { return func(o *attrOptions) { o.ifVersion = &version } }

// Atomic(false) makes a many write or delete apply each item on its own: the items that fail
// (a limit, an invalid or repeated name, an existing one for a create, a version mismatch, the
// quota) are left out and the others are written. The call then returns an error wrapping
// [ErrSomeItemsFailed] when any item failed, and [Results] tells which. Calls are atomic by
// default.
func Atomic(on bool) AttrOption { return func(o *attrOptions) { o.atomic = &on } }

// Results makes a write or delete that succeeds, or that fails with [ErrSomeItemsFailed], set
// *dst to one [ItemResult] per item, in the order of the call's items (or names).
func Results(dst *[]ItemResult) AttrOption { return func(o *attrOptions) { o.results = dst } }

// ItemResult is what a write or delete did with one item. Version is the attribute's new
// version, 0 when nothing was written (a delete, an update of a missing attribute, a failed
// item, or a server that answers no versions). Err is the item's own [*Error] (its HTTPStatus
// that of the answer, 200), only ever set with [Atomic](false).
type ItemResult struct {
	Name    string
	Version int64
	Err     error
}

// ErrSomeItemsFailed is wrapped by the error of an [Atomic](false) call in which some item
// failed; the items that did not fail were written.
var ErrSomeItemsFailed = errors.New("some items failed")

func collect(opts []AttrOption) attrOptions {
	var o attrOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// seconds returns d in whole seconds, or an error for a negative or fractional d.
func seconds(d time.Duration) (int64, error) {
	if d < 0 || d%time.Second != 0 {
		return 0, fmt.Errorf("attrcache: expiration %v: want whole seconds, at least 0", d)
	}
	return int64(d / time.Second), nil
}

// input returns the input of a call on a: the caller, the owner, and the options of a write.
func (a *Attrs) input(o attrOptions) (map[string]any, error) {
	in := a.s.c.input(a.s.UST)
	setIf(in, a.ownerKey, a.owner)
	if o.expiresIn != 0 {
		secs, err := seconds(o.expiresIn)
		if err != nil {
			return nil, err
		}
		in["expiration"] = secs
	}
	if o.encrypt != nil {
		in["encrypt"] = *o.encrypt
	}
	if o.decrypt != nil {
		in["decrypt"] = *o.decrypt
	}
	if o.ifVersion != nil {
		in["if_version"] = *o.ifVersion
	}
	if o.atomic != nil {
		in["atomic"] = *o.atomic
	}
	return in, nil
}

// Set writes one attribute, creating it or replacing its value. Retried as a PUT, unless
// [IfVersion] makes it conditional.
func (a *Attrs) Set(ctx context.Context, name string, value any, opts ...AttrOption) error {
	return a.writeOne(ctx, http.MethodPut, true, name, value, opts)
}

// SetMany writes several attributes at once. Retried as a PUT, unless conditional.
func (a *Attrs) SetMany(ctx context.Context, items []Item, opts ...AttrOption) error {
	return a.writeMany(ctx, http.MethodPut, true, items, opts)
}

// Create writes a new attribute; one that exists answers E009001 ([CodeAttrExists]).
func (a *Attrs) Create(ctx context.Context, name string, value any, opts ...AttrOption) error {
	return a.writeOne(ctx, http.MethodPost, false, name, value, opts)
}

// CreateMany writes new attributes; if any exists, none is written (E009001).
func (a *Attrs) CreateMany(ctx context.Context, items []Item, opts ...AttrOption) error {
	return a.writeMany(ctx, http.MethodPost, false, items, opts)
}

// Update replaces an attribute's value; a missing attribute is silently left missing.
func (a *Attrs) Update(ctx context.Context, name string, value any, opts ...AttrOption) error {
	return a.writeOne(ctx, http.MethodPatch, false, name, value, opts)
}

// UpdateMany replaces the values of several attributes.
func (a *Attrs) UpdateMany(ctx context.Context, items []Item, opts ...AttrOption) error {
	return a.writeMany(ctx, http.MethodPatch, false, items, opts)
}

func (a *Attrs) writeOne(ctx context.Context, method string, idempotent bool, name string, value any, opts []AttrOption) error {
	o := collect(opts)
	in, err := a.input(o)
	if err != nil {
		return err
	}
	in["name"], in["value"] = name, value
	return a.write(ctx, call{method: method, path: a.path, input: in, idempotent: idempotent && o.ifVersion == nil}, []string{name}, o)
}

func (a *Attrs) writeMany(ctx context.Context, method string, idempotent bool, items []Item, opts []AttrOption) error {
	o := collect(opts)
	in, err := a.input(o)
	if err != nil {
		return err
	}
	conditional := o.ifVersion != nil
	data := make([]map[string]any, len(items))
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = it.Name
		item := map[string]any{"name": it.Name, "value": it.Value}
		if it.ExpiresIn != 0 {
			secs, err := seconds(it.ExpiresIn)
			if err != nil {
				return err
			}
			item["expiration"] = secs
		}
		if it.Encrypt != nil {
			item["encrypt"] = *it.Encrypt
		}
		if it.IfVersion != nil {
			item["if_version"] = *it.IfVersion
			conditional = true
		}
		data[i] = item
	}
	in["data"] = data
	return a.write(ctx, call{method: method, path: a.path, input: in, idempotent: idempotent && !conditional}, names, o)
}

// Delete deletes an attribute; a missing one is no error. Retried as a DELETE, unless
// [IfVersion] makes it conditional. Options: IfVersion, Results.
func (a *Attrs) Delete(ctx context.Context, name string, opts ...AttrOption) error {
	o := collect(opts)
	in, err := a.input(o)
	if err != nil {
		return err
	}
	in["name"] = name
	return a.write(ctx, call{method: http.MethodDelete, path: a.path, input: in, idempotent: o.ifVersion == nil}, []string{name}, o)
}

// DeleteMany deletes several attributes. Retried as a DELETE, unless conditional. Options:
// IfVersion, Atomic, Results.
func (a *Attrs) DeleteMany(ctx context.Context, names []string, opts ...AttrOption) error {
	items := make([]Item, len(names))
	for i, name := range names {
		items[i].Name = name
	}
	return a.DeleteItems(ctx, items, opts...)
}

// DeleteItems is DeleteMany for items, of which it reads Name and IfVersion: an item's
// IfVersion, or the [IfVersion] option, makes its deletion conditional.
func (a *Attrs) DeleteItems(ctx context.Context, items []Item, opts ...AttrOption) error {
	o := collect(opts)
	in, err := a.input(o)
	if err != nil {
		return err
	}
	conditional := o.ifVersion != nil
	data := make([]any, len(items))
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = it.Name
		if it.IfVersion == nil {
			data[i] = it.Name
			continue
		}
		data[i] = map[string]any{"name": it.Name, "if_version": *it.IfVersion}
		conditional = true
	}
	in["data"] = data
	return a.write(ctx, call{method: http.MethodDelete, path: a.path, input: in, idempotent: !conditional}, names, o)
}

// Get returns an attribute, or nil and no error when it does not exist (or has expired).
func (a *Attrs) Get(ctx context.Context, name string, opts ...AttrOption) (*Attr, error) {
	var answer struct {
		Found bool `json:"found"`
		Attr
	}
	if err := a.call(ctx, http.MethodGet, a.path, map[string]any{"name": name}, &answer, opts...); err != nil {
		return nil, err
	}
	if !answer.Found {
		return nil, nil
	}
	return &answer.Attr, nil
}

// GetMany returns the attributes of names, keyed by name; a missing one maps to nil.
func (a *Attrs) GetMany(ctx context.Context, names []string, opts ...AttrOption) (map[string]*Attr, error) {
	var answer struct {
		Result map[string]*Attr `json:"result"`
	}
	if err := a.call(ctx, http.MethodGet, a.path, map[string]any{"data": names}, &answer, opts...); err != nil {
		return nil, err
	}
	return answer.Result, nil
}

// Exists reports whether an attribute exists.
func (a *Attrs) Exists(ctx context.Context, name string) (bool, error) {
	var answer struct {
		Result bool `json:"result"`
	}
	err := a.call(ctx, http.MethodGet, a.existsPath, map[string]any{"name": name}, &answer)
	return answer.Result, err
}

// ExistsMany reports, for each of names, whether that attribute exists.
func (a *Attrs) ExistsMany(ctx context.Context, names []string) (map[string]bool, error) {
	var answer struct {
		Result map[string]bool `json:"result"`
	}
	err := a.call(ctx, http.MethodGet, a.existsPath, map[string]any{"data": names}, &answer)
	return answer.Result, err
}

// Names returns the names of the live attributes, in byte order.
func (a *Attrs) Names(ctx context.Context) ([]string, error) {
	var answer struct {
		Result []string `json:"result"`
	}
	err := a.call(ctx, http.MethodGet, a.namesPath, nil, &answer)
	return answer.Result, err
}

// call makes a read (retried) with the keys of extra.
func (a *Attrs) call(ctx context.Context, method, path string, extra map[string]any, answer any, opts ...AttrOption) error {
	in, err := a.input(collect(opts))
	if err != nil {
		return err
	}
	for k, v := range extra {
		in[k] = v
	}
	_, err = a.s.c.do(ctx, call{method: method, path: path, input: in, idempotent: true}, answer)
	return err
}

// writeAnswer is the answer of a write or delete: the new version of the single form's
// attribute, the versions of the many form's, and, with atomic false, each item's result.
type writeAnswer struct {
	Version  *int64           `json:"version"`
	Versions map[string]int64 `json:"versions"`
	Result   []struct {
		Name      string   `json:"name"`
		Status    string   `json:"status"`
		SubStatus []string `json:"sub_status"`
		Message   string   `json:"message"`
		Version   *int64   `json:"version"`
	} `json:"result"`
}

// write sends cl, a write or delete of the attributes names (one name: the single form), sets
// the results when o asks for them, and fails with ErrSomeItemsFailed when an item failed.
func (a *Attrs) write(ctx context.Context, cl call, names []string, o attrOptions) error {
	var answer writeAnswer
	env, err := a.s.c.do(ctx, cl, &answer)
	if err != nil {
		return err
	}
	results, failed := answer.results(cl, env.CID, names)
	if o.results != nil {
		*o.results = results
	}
	if failed > 0 {
		return fmt.Errorf("attrcache: %s %s: %d of %d items failed (%s): %w",
			cl.method, cl.path, failed, len(results), strings.Join(env.SubStatus, ", "), ErrSomeItemsFailed)
	}
	return nil
}

// results returns one ItemResult per item of the call cl, whose items are named names, and how
// many failed: the answer's result list when it has one (atomic false), else the names with
// their versions.
func (w *writeAnswer) results(cl call, cid string, names []string) (results []ItemResult, failed int) {
	if w.Result == nil {
		results = make([]ItemResult, len(names))
		for i, name := range names {
			results[i] = ItemResult{Name: name, Version: w.Versions[name]}
		}
		if w.Version != nil && len(results) == 1 {
			results[0].Version = *w.Version
		}
		return results, 0
	}
	results = make([]ItemResult, len(w.Result))
	for i, r := range w.Result {
		results[i].Name = r.Name
		if r.Version != nil {
			results[i].Version = *r.Version
		}
		if r.Status == "error" {
			results[i].Err = &Error{Method: cl.method, Path: cl.path, HTTPStatus: http.StatusOK, Status: r.Status,
				SubStatus: r.SubStatus, CID: cid, Message: r.Message}
			failed++
		}
	}
	return results, failed
}

package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Attrs are the attributes of one owner as one session may use them: a user's
// ([Session.UserAttrs]) or a session's ([Session.SessionAttrs]). Single calls send name; the
// Many calls send data, and are all-or-nothing.
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
}

// Decode unmarshals the attribute's value into v.
func (a *Attr) Decode(v any) error { return json.Unmarshal(a.Value, v) }

// Item is one attribute of a many write. Its zero ExpiresIn and nil Encrypt take the call's
// options.
type Item struct {
	Name      string
	Value     any // any value encoding/json encodes; a json.RawMessage is sent as it is
	ExpiresIn time.Duration
	Encrypt   *bool
}

// AttrOption is an option of an attribute call.
type AttrOption func(*attrOptions)

type attrOptions struct {
	expiresIn time.Duration
	encrypt   *bool
	decrypt   *bool
}

// ExpiresIn makes the written attributes expire d after the server receives the call. d is
// whole seconds; 0 means never on create and "as it is" on update.
func ExpiresIn(d time.Duration) AttrOption { return func(o *attrOptions) { o.expiresIn = d } }

// Encrypt says whether the written attributes are stored encrypted.
func Encrypt(on bool) AttrOption { return func(o *attrOptions) { o.encrypt = &on } }

// Decrypt says whether a read decrypts encrypted values (the server's default: true).
func Decrypt(on bool) AttrOption { return func(o *attrOptions) { o.decrypt = &on } }

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
	return in, nil
}

// Set writes one attribute, creating it or replacing its value. Retried as a PUT.
func (a *Attrs) Set(ctx context.Context, name string, value any, opts ...AttrOption) error {
	return a.writeOne(ctx, http.MethodPut, true, name, value, opts)
}

// SetMany writes several attributes at once. Retried as a PUT.
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
	in, err := a.input(collect(opts))
	if err != nil {
		return err
	}
	in["name"], in["value"] = name, value
	_, err = a.s.c.do(ctx, call{method: method, path: a.path, input: in, idempotent: idempotent}, nil)
	return err
}

func (a *Attrs) writeMany(ctx context.Context, method string, idempotent bool, items []Item, opts []AttrOption) error {
	in, err := a.input(collect(opts))
	if err != nil {
		return err
	}
	data := make([]map[string]any, len(items))
	for i, it := range items {
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
		data[i] = item
	}
	in["data"] = data
	_, err = a.s.c.do(ctx, call{method: method, path: a.path, input: in, idempotent: idempotent}, nil)
	return err
}

// Delete deletes an attribute; a missing one is no error. Retried as a DELETE.
func (a *Attrs) Delete(ctx context.Context, name string) error {
	return a.call(ctx, http.MethodDelete, a.path, map[string]any{"name": name}, nil)
}

// DeleteMany deletes several attributes. Retried as a DELETE.
func (a *Attrs) DeleteMany(ctx context.Context, names []string) error {
	return a.call(ctx, http.MethodDelete, a.path, map[string]any{"data": names}, nil)
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

// call makes a read or a delete (both retried) with the keys of extra.
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

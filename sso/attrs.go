package sso

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/attrcache/attrcache"
)

// AttrValue is an attribute as a caller reads it. Value is the attribute's JSON value or, for a
// value stored encrypted and read with Decrypt(false), the JSON string of its ciphertext.
// IsEncrypted tells how the value is stored, whatever was returned. ExpirationTime is
// attrcache.NeverExpires for an attribute that never expires.
type AttrValue struct {
	Name           string
	Value          json.RawMessage
	CreationTime   time.Time
	LastModified   time.Time
	ExpirationTime time.Time
	IsEncrypted    bool
	Version        int64 // grows with every write of the attribute (CONTRACT.md §10)
}

// AttrItem is one attribute of a many-item write. Value is any value encoding/json can encode (a
// json.RawMessage is taken as the JSON text it holds). A nil Expiration or Encrypt takes the
// call's option. A nil IfVersion takes the call's IfVersion option, if any.
type AttrItem struct {
	Name       string
	Value      any
	Expiration *int64
	Encrypt    *bool
	IfVersion  *int64
}

// AttrOption is an option of an AttrAPI call. A call ignores the options it has no use for.
type AttrOption func(*attrOptions)

type attrOptions struct {
	expiration int64
	encrypt    bool
	decrypt    bool
	ifVersion  *int64
	atomic     bool
	results    *[]AttrResult
}

// Expiration makes the written attributes expire seconds after the call arrived. 0, the
// default, means that a created attribute never expires and an existing one keeps its
// expiration time; a negative value fails the call with E008002.
func Expiration(seconds int64) AttrOption {
	return func(o *attrOptions) { o.expiration = seconds }
}

// Encrypt makes the written values stored encrypted (AES-256-GCM, bound to their owner, scope
// and name). Without it, or with Encrypt(false), a write stores its value as plaintext.
func Encrypt(on bool) AttrOption {
	return func(o *attrOptions) { o.encrypt = on }
}

// Decrypt(false) makes a read return an encrypted value as it is stored: the JSON string of its
// ciphertext. Reads decrypt by default.
func Decrypt(on bool) AttrOption {
	return func(o *attrOptions) { o.decrypt = on }
}

func newAttrOptions(opts []AttrOption) attrOptions {
	o := attrOptions{decrypt: true, atomic: true}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// AttrAPI is the attributes of one user, or of one session, as one caller may use them
// (CONTRACT.md §4). It is safe for concurrent use.
//
// Every call checks the caller's UST again, as every UST call does, and for session attributes
// the target session too; so an AttrAPI stops working as soon as its caller's session does,
// with the codes of any UST call (E007001, E005002, …). On a cache hit a read costs one Redis
// round trip in all, checks included. Expirations count from the call's arrival. A name is 1 to
// attrcache.MaxAttrNameBytes bytes of UTF-8 without control characters, a value at most
// Config.MaxAttrValueBytes of JSON, a many-item call 1 to attrcache.MaxAttrItems items; anything
// else fails with E008002 before anything is written. Many-item writes are all-or-nothing; an
// unreachable backend gives a KindUnavailable error.
type AttrAPI struct {
	api *API
	// ownerID is whose attributes these are, for user attributes ("" is the caller).
	ownerID string
	// forSession is set for session attributes: those of the session of targetUST.
	forSession bool
	targetUST  string
	// ust, app and remoteAddr are the caller's; every call checks ust and app again. cid is the
	// cid of every audit entry the calls make.
	cid, ust, app, remoteAddr string
	// ownerFound is set once another user's attributes are known to have an owner: the first
	// call checks that the user exists (UserAttrs makes that call itself).
	ownerFound atomic.Bool
}

// attrCall is one call of an AttrAPI once its caller has been let in.
type attrCall struct {
	caller *caller
	scope  attrcache.AttrScope
	now    time.Time // the call's arrival
}

// UserAttrs returns the attributes of user userID, used as the caller of ust. userID "" or the
// caller's own is the caller; another user needs a super-user (E005001 for a regular user). An
// unknown userID, or one not of the exact form of a user_id, gives E005001.
func (a *API) UserAttrs(ctx context.Context, cid, userID, ust, app, remoteAddr string) (*AttrAPI, error) {
	attrs := a.UserAttrsDeferred(cid, userID, ust, app, remoteAddr)
	if err := attrs.Check(ctx); err != nil {
		return nil, err
	}
	return attrs, nil
}

// UserAttrsDeferred returns what UserAttrs returns without checking anything first: its first
// call checks what UserAttrs would have, and fails as UserAttrs would have. It saves the round
// trips of a check for a caller that makes one call, as a REST request does.
func (a *API) UserAttrsDeferred(cid, userID, ust, app, remoteAddr string) *AttrAPI {
	return a.userAttrAPI(cid, userID, ust, app, remoteAddr)
}

// SessionAttrs returns the attributes of the session of targetUST, used as the caller of
// currentUST, who must be a super-user or the target session's owner (E005001). A target that
// is not a UST, or whose session is unknown or has ended, gives E007001; its owner is checked as
// a caller would be.
func (a *API) SessionAttrs(ctx context.Context, cid, targetUST, currentUST, app, remoteAddr string) (*AttrAPI, error) {
	attrs := a.SessionAttrsDeferred(cid, targetUST, currentUST, app, remoteAddr)
	if err := attrs.Check(ctx); err != nil {
		return nil, err
	}
	return attrs, nil
}

// SessionAttrsDeferred returns what SessionAttrs returns without checking anything first: its
// first call checks what SessionAttrs would have (every call does), and fails as SessionAttrs
// would have.
func (a *API) SessionAttrsDeferred(cid, targetUST, currentUST, app, remoteAddr string) *AttrAPI {
	return &AttrAPI{api: a, forSession: true, targetUST: targetUST, cid: cid, ust: currentUST, app: app, remoteAddr: remoteAddr}
}

// Check checks the caller, and their right to these attributes, as every call does, and does
// nothing else.
func (x *AttrAPI) Check(ctx context.Context) error {
	_, err := x.begin(ctx, nil)
	return err
}

func (a *API) userAttrAPI(cid, ownerID, ust, app, remoteAddr string) *AttrAPI {
	return &AttrAPI{api: a, ownerID: ownerID, cid: cid, ust: ust, app: app, remoteAddr: remoteAddr}
}

// begin starts a call: it notes the arrival time, gathers the facts of the caller's access from
// the stores, notes the caller and the owner on rec, and returns the scope decideAttrCall lets
// the caller act on.
func (x *AttrAPI) begin(ctx context.Context, rec *auditCall) (*attrCall, error) {
	f := x.gatherAttrFacts(ctx, x.api.now())
	x.auditFacts(rec, f)
	return decideAttrCall(f)
}

// Set creates the attribute or, if it exists, replaces its value (and its expiration time when
// Expiration is given). Options: Expiration, Encrypt.
func (x *AttrAPI) Set(ctx context.Context, name string, value any, opts ...AttrOption) error {
	return x.SetMany(ctx, []AttrItem{{Name: name, Value: value}}, opts...)
}

// SetMany sets every item as Set does, all or none (see Atomic).
func (x *AttrAPI) SetMany(ctx context.Context, items []AttrItem, opts ...AttrOption) error {
	return x.write(ctx, auditAttrSet, attrcache.AttrSet, x.api.attrs.SetAttrs, items, opts)
}

// Create creates the attribute; E009001 if it exists (an expired one counts as absent).
// Options: Expiration, Encrypt.
func (x *AttrAPI) Create(ctx context.Context, name string, value any, opts ...AttrOption) error {
	return x.CreateMany(ctx, []AttrItem{{Name: name, Value: value}}, opts...)
}

// CreateMany creates every item, or none with E009001 when one of them exists or two share a
// name (see Atomic).
func (x *AttrAPI) CreateMany(ctx context.Context, items []AttrItem, opts ...AttrOption) error {
	return x.write(ctx, auditAttrCreate, attrcache.AttrCreate, x.api.attrs.CreateAttrs, items, opts)
}

// Update replaces the value of the attribute (and its expiration time when Expiration is given)
// if it exists, and does nothing otherwise. Options: Expiration, Encrypt.
func (x *AttrAPI) Update(ctx context.Context, name string, value any, opts ...AttrOption) error {
	return x.UpdateMany(ctx, []AttrItem{{Name: name, Value: value}}, opts...)
}

// UpdateMany updates every item that exists as Update does, all or none (see Atomic), and
// ignores the others.
func (x *AttrAPI) UpdateMany(ctx context.Context, items []AttrItem, opts ...AttrOption) error {
	return x.write(ctx, auditAttrUpdate, attrcache.AttrUpdate, x.api.attrs.UpdateAttrs, items, opts)
}

// attrWriteFunc is a write of an attrcache.AttrStore.
type attrWriteFunc func(ctx context.Context, scope attrcache.AttrScope, items []attrcache.AttrWrite, now time.Time) ([]*attrcache.Attr, error)

// write checks and encodes every item, then stores them all with store, or each on its own
// (storeOp) with Atomic(false); op names the write in errors and on the audit log.
func (x *AttrAPI) write(ctx context.Context, op attrOpName, storeOp attrcache.AttrWriteOp, store attrWriteFunc, items []AttrItem, opts []AttrOption) (err error) {
	ctx = attrcache.WithCID(ctx, x.cid)
	rec := x.auditItems(op, items)
	defer func() { rec.done(ctx, err) }()
	call, err := x.begin(ctx, rec)
	if err != nil {
		return err
	}
	o := newAttrOptions(opts)
	if !o.atomic {
		return x.writeEach(ctx, call, op, storeOp, items, o)
	}
	writes, err := x.api.attrWrites(call, items, o)
	if err != nil {
		return err
	}
	stored, err := store(ctx, call.scope, writes, call.now)
	if err != nil {
		return attrStoreError(err, op.desc, call.scope)
	}
	o.report(itemNamesOf(items), stored)
	return nil
}

// attrWrites checks every item and returns what the store writes for them.
func (a *API) attrWrites(call *attrCall, items []AttrItem, o attrOptions) ([]attrcache.AttrWrite, error) {
	if err := checkItemCount(len(items)); err != nil {
		return nil, err
	}
	writes := make([]attrcache.AttrWrite, len(items))
	for i, item := range items {
		w, err := a.prepareAttrItem(call, item, o)
		if err != nil {
			return nil, err
		}
		writes[i] = w
	}
	if err := checkConditionedOnce(writes); err != nil {
		return nil, err
	}
	return writes, nil
}

// checkConditionedOnce fails with E008002 when a name with an IfVersion is given twice: of
// repeated names the last item wins, which would drop the others' conditions unchecked.
func checkConditionedOnce(writes []attrcache.AttrWrite) error {
	if len(writes) < 2 {
		return nil
	}
	conditioned := make(map[string]bool, len(writes))
	for _, w := range writes {
		conditioned[w.Name] = conditioned[w.Name] || w.IfVersion != nil
	}
	seen := make(map[string]bool, len(writes))
	for _, w := range writes {
		if seen[w.Name] && conditioned[w.Name] {
			return attrcache.InvalidInput("attribute %q is given twice with if_version; give each name once", w.Name)
		}
		seen[w.Name] = true
	}
	return nil
}

// prepareAttrItem checks item, encodes its value as JSON and, when it is to be encrypted, seals that
// JSON and stores the JSON string of the envelope.
func (a *API) prepareAttrItem(call *attrCall, item AttrItem, o attrOptions) (attrcache.AttrWrite, error) {
	if !attrcache.ValidAttrName(item.Name) {
		return attrcache.AttrWrite{}, invalidAttrName()
	}
	expiration, encrypt := o.expiration, o.encrypt
	if item.Expiration != nil {
		expiration = *item.Expiration
	}
	if item.Encrypt != nil {
		encrypt = *item.Encrypt
	}
	ifVersion := o.ifVersion
	if item.IfVersion != nil {
		ifVersion = item.IfVersion
	}
	if ifVersion != nil && *ifVersion < 0 {
		return attrcache.AttrWrite{}, attrcache.InvalidInput("attribute %q: if_version must not be negative", item.Name)
	}
	if expiration < 0 {
		return attrcache.AttrWrite{}, attrcache.InvalidInput("attribute %q: expiration must not be negative", item.Name)
	}
	value, err := encodeAttrValue(item.Value)
	if err != nil {
		return attrcache.AttrWrite{}, attrcache.InvalidInput("attribute %q: the value cannot be encoded as JSON", item.Name)
	}
	if len(value) > a.cfg.MaxAttrValueBytes {
		return attrcache.AttrWrite{}, attrcache.InvalidInput("attribute %q: the value is %d bytes of JSON, more than the limit of %d",
			item.Name, len(value), a.cfg.MaxAttrValueBytes)
	}
	if encrypt {
		sealed := a.keys.Seal(attrcache.PurposeAttr, value, attrcache.AttrAD(call.scope, item.Name))
		value, _ = json.Marshal(sealed) // a string always encodes
	}
	return attrcache.AttrWrite{
		Name:        item.Name,
		Value:       string(value),
		IsEncrypted: encrypt,
		ExpiresAt:   attrcache.AttrExpiry(call.now, expiration),
		IfVersion:   ifVersion,
	}, nil
}

// encodeAttrValue returns the compact JSON text of value, with <, > and & as they are (not
// escaped as encoding/json.Marshal escapes them), so that a json.RawMessage keeps its text.
func encodeAttrValue(value any) ([]byte, error) {
	if raw, ok := value.(json.RawMessage); ok {
		return compactRawValue(raw)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(value); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// compactRawValue returns what an Encoder with SetEscapeHTML(false) writes for raw, without its
// newline: "null" for a nil raw, else raw compacted by json.Compact (which escapes nothing, as
// that Encoder does not), or an error when raw is not valid JSON. Compacting never lengthens
// JSON text, so the one allocation is raw's size.
func compactRawValue(raw json.RawMessage) ([]byte, error) {
	if raw == nil {
		return []byte("null"), nil
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(raw)))
	if err := json.Compact(buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Get returns the attribute, or nil when it is missing or has expired. Options: Decrypt.
func (x *AttrAPI) Get(ctx context.Context, name string, opts ...AttrOption) (*AttrValue, error) {
	values, err := x.GetMany(ctx, []string{name}, opts...)
	if err != nil {
		return nil, err
	}
	return values[name], nil
}

// GetMany returns every named attribute, keyed by every name asked for: nil for one that is
// missing or has expired. A stored value that cannot be decrypted (sealed for another attribute,
// or under a key the keyring no longer has) fails the call with E008002. Options: Decrypt.
func (x *AttrAPI) GetMany(ctx context.Context, names []string, opts ...AttrOption) (_ map[string]*AttrValue, err error) {
	rec := x.auditNames(auditAttrGet, names)
	defer func() { rec.done(ctx, err) }()
	call, attrs, err := x.read(ctx, rec, names)
	if err != nil {
		return nil, err
	}
	decrypt := newAttrOptions(opts).decrypt
	values := make(map[string]*AttrValue, len(names))
	for _, name := range names {
		attr := attrs[name]
		if attr == nil {
			values[name] = nil
			continue
		}
		v, err := x.api.attrValue(call.scope, attr, decrypt)
		if err != nil {
			return nil, err
		}
		values[name] = v
	}
	return values, nil
}

// Exists reports whether the attribute exists and has not expired.
func (x *AttrAPI) Exists(ctx context.Context, name string) (bool, error) {
	found, err := x.ExistsMany(ctx, []string{name})
	return found[name], err
}

// ExistsMany reports, for every name asked for, whether its attribute exists and has not expired.
func (x *AttrAPI) ExistsMany(ctx context.Context, names []string) (_ map[string]bool, err error) {
	rec := x.auditNames(auditAttrExists, names)
	defer func() { rec.done(ctx, err) }()
	_, attrs, err := x.read(ctx, rec, names)
	if err != nil {
		return nil, err
	}
	found := make(map[string]bool, len(names))
	for _, name := range names {
		found[name] = attrs[name] != nil
	}
	return found, nil
}

// read checks names and returns the live attributes among them, keyed by name, noting the caller
// and the owner on rec.
func (x *AttrAPI) read(ctx context.Context, rec *auditCall, names []string) (*attrCall, map[string]*attrcache.Attr, error) {
	if call, attrs, ok := x.readCached(ctx, names); ok {
		rec.from(call)
		return call, attrs, nil
	}
	call, err := x.begin(ctx, rec)
	if err != nil {
		return nil, nil, err
	}
	if err := checkAttrNames(names); err != nil {
		return nil, nil, err
	}
	attrs, err := x.api.attrs.Attrs(ctx, call.scope, names, call.now)
	if err != nil {
		return nil, nil, attrStoreError(err, "get attributes", call.scope)
	}
	return call, attrs, nil
}

// readCached is read in one round trip, when the attribute store can answer a read with the
// facts of the caller's access (attrcache.CachedAttrReader) and its cache holds them all. ok is
// false otherwise, and whenever decideAttrCall refuses: read then starts again the usual way,
// whose look-ups are authoritative and which fails with the right error.
func (x *AttrAPI) readCached(ctx context.Context, names []string) (call *attrCall, attrs map[string]*attrcache.Attr, ok bool) {
	if checkAttrNames(names) != nil {
		return nil, nil, false
	}
	facts, attrs, ok := x.cachedAttrFacts(ctx, names, x.api.now())
	if !ok {
		return nil, nil, false
	}
	call, err := decideAttrCall(facts)
	if err != nil {
		return nil, nil, false
	}
	if !x.forSession && call.scope.UserID != call.caller.userID() {
		x.ownerFound.Store(true) // the cache holds the owner's principal
	}
	return call, attrs, true
}

// Names returns the names of the attributes that have not expired, sorted by byte order; an
// empty, non-nil list when there are none.
func (x *AttrAPI) Names(ctx context.Context) (_ []string, err error) {
	rec := x.auditNames(auditAttrNames, nil)
	defer func() { rec.done(ctx, err) }()
	call, err := x.begin(ctx, rec)
	if err != nil {
		return nil, err
	}
	names, err := x.api.attrs.AttrNames(ctx, call.scope, call.now)
	if err != nil {
		return nil, attrStoreError(err, "list attribute names", call.scope)
	}
	if names == nil {
		names = []string{}
	}
	slices.Sort(names)
	return names, nil
}

// Delete deletes the attribute; a missing one is not an error. Options: IfVersion, Results.
func (x *AttrAPI) Delete(ctx context.Context, name string, opts ...AttrOption) error {
	return x.DeleteMany(ctx, []string{name}, opts...)
}

// DeleteMany deletes the named attributes, all or none (see Atomic); missing ones are ignored.
// Options: IfVersion, Atomic, Results.
func (x *AttrAPI) DeleteMany(ctx context.Context, names []string, opts ...AttrOption) error {
	items := make([]AttrItem, len(names))
	for i, name := range names {
		items[i].Name = name
	}
	return x.DeleteItems(ctx, items, opts...)
}

// DeleteItems is DeleteMany for items, of which it reads only Name and IfVersion: each item's
// IfVersion, or the IfVersion option, makes its deletion conditional.
func (x *AttrAPI) DeleteItems(ctx context.Context, items []AttrItem, opts ...AttrOption) (err error) {
	ctx = attrcache.WithCID(ctx, x.cid)
	names := itemNamesOf(items)
	rec := x.auditNames(auditAttrDelete, names)
	defer func() { rec.done(ctx, err) }()
	call, err := x.begin(ctx, rec)
	if err != nil {
		return err
	}
	o := newAttrOptions(opts)
	if !o.atomic {
		return x.writeEach(ctx, call, auditAttrDelete, attrcache.AttrDelete, items, o)
	}
	if err := checkAttrNames(names); err != nil {
		return err
	}
	deletes, conditional, err := deleteWrites(items, o)
	if err != nil {
		return err
	}
	if conditional {
		if err := checkConditionedOnce(deletes); err != nil {
			return err
		}
		_, err = x.api.attrs.WriteAttrsChecked(ctx, call.scope, attrcache.AttrDelete, attrcache.LastWritePerName(deletes), true, call.now)
	} else {
		_, err = x.api.attrs.DeleteAttrs(ctx, call.scope, names, call.now)
	}
	if err != nil {
		return attrStoreError(err, auditAttrDelete.desc, call.scope)
	}
	o.report(names, nil)
	return nil
}

// attrValue returns attr as a caller reads it, its value decrypted when decrypt is set and the
// value is stored encrypted. scope is the scope the attribute was asked for in, which an
// encrypted value must have been sealed for.
func (a *API) attrValue(scope attrcache.AttrScope, attr *attrcache.Attr, decrypt bool) (*AttrValue, error) {
	v := &AttrValue{
		Name:           attr.Name,
		Value:          json.RawMessage(attr.Value),
		CreationTime:   attr.CreationTime,
		LastModified:   attr.LastModified,
		ExpirationTime: attr.ExpirationTime,
		IsEncrypted:    attr.IsEncrypted,
		Version:        attr.Version,
	}
	if attr.IsEncrypted && decrypt {
		plain, err := a.openAttrValue(scope, attr)
		if err != nil {
			return nil, err
		}
		v.Value = plain
	}
	return v, nil
}

// openAttrValue returns the JSON value sealed in attr's stored value: attrcache.KeyMissing (503)
// when it is sealed with a key id the keyring does not have, an operator's error; E008002 when it
// is not a JSON value sealed for this scope and name.
func (a *API) openAttrValue(scope attrcache.AttrScope, attr *attrcache.Attr) (json.RawMessage, error) {
	var envelope string
	if err := json.Unmarshal([]byte(attr.Value), &envelope); err == nil {
		plain, err := a.keys.Open(attrcache.PurposeAttr, envelope, attrcache.AttrAD(scope, attr.Name))
		if err == nil && json.Valid(plain) {
			return plain, nil
		}
		if missing, ok := errors.AsType[*attrcache.KeyNotConfiguredError](err); ok {
			return nil, attrcache.KeyMissing(missing.KeyID)
		}
	}
	undecryptable := attrcache.InvalidInput("attribute %q: the stored value cannot be decrypted: "+
		"it was encrypted for another attribute or with a key that is no longer configured", attr.Name)
	undecryptable.Err = attrcache.ErrUndecryptable
	return nil, undecryptable
}

// checkItemCount fails with E008002 unless a many-item call has 1 to attrcache.MaxAttrItems items.
func checkItemCount(n int) error {
	switch {
	case n == 0:
		return attrcache.InvalidInput("no attribute given")
	case n > attrcache.MaxAttrItems:
		return attrcache.InvalidInput("%d attributes given, more than the limit of %d", n, attrcache.MaxAttrItems)
	}
	return nil
}

// checkAttrNames fails with E008002 unless names holds 1 to attrcache.MaxAttrItems valid names.
func checkAttrNames(names []string) error {
	if err := checkItemCount(len(names)); err != nil {
		return err
	}
	for _, name := range names {
		if !attrcache.ValidAttrName(name) {
			return invalidAttrName()
		}
	}
	return nil
}

// invalidAttrName is E008002 for a name that breaks the rules; the name itself is not repeated,
// since it may be large or hold control characters.
func invalidAttrName() *attrcache.Error {
	return attrcache.InvalidInput("an attribute name must be 1 to %d bytes of UTF-8 without control characters",
		attrcache.MaxAttrNameBytes)
}

// attrStoreError turns an error of the attribute store into what the caller sees: a taken name
// is E009001, a quota exceeded E009103, and a scope that is gone (a deleted user, an ended session) is E005001 or E007001;
// see storeError for the rest.
func attrStoreError(err error, op string, scope attrcache.AttrScope) error {
	switch {
	case errors.Is(err, attrcache.ErrConflict):
		return attrcache.Denied(attrcache.CodeAttrExists, "an attribute of that name already exists")
	case errors.Is(err, attrcache.ErrQuotaExceeded):
		return attrcache.QuotaExceeded()
	case errors.Is(err, attrcache.ErrVersionMismatch):
		return attrcache.VersionMismatch()
	case scope.IsSession():
		return storeError(err, op, noSuchSession())
	default:
		return storeError(err, op, noSuchUser())
	}
}

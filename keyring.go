package attrcache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Purposes of the keys derived from a secret key: each purpose has its own AES-256 key, so a
// ciphertext made for one can never be opened as another.
const (
	PurposeAttr  = "attr"
	PurposeEmail = "email"
	PurposeTOTP  = "totp"
	PurposeUST   = "ust"
)

// envelopePrefix starts every sealed value: "ac1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>".
const envelopePrefix = "ac1."

// envelopeEncoding is the base64 of envelopes. It is strict, and Open also refuses line breaks,
// so that each sealed value has exactly one printable form: changing any character of an
// envelope makes it fail to open.
var envelopeEncoding = base64.RawURLEncoding.Strict()

// DefaultKeyID is the id of the key given by ATTRCACHE_SECRET_KEY alone.
const DefaultKeyID = "k1"

// ErrUndecryptable is returned by Open for anything it cannot authenticate and decrypt.
var ErrUndecryptable = errors.New("value cannot be decrypted")

// Keyring holds the secret keys, newest first: Seal always uses the newest, Open any of them by
// the key id written in the envelope. It is safe for concurrent use.
type Keyring struct {
	ids   []string
	keys  map[string][]byte
	mu    sync.RWMutex
	aeads map[string]cipher.AEAD // key id + "/" + purpose
}

// NewKeyring returns a keyring of one key with id DefaultKeyID. The key must be 32 bytes.
func NewKeyring(key []byte) (*Keyring, error) {
	return newKeyring([]string{DefaultKeyID}, [][]byte{key})
}

// ParseSecretKey reads ATTRCACHE_SECRET_KEY: the base64 of 32 bytes.
func ParseSecretKey(b64 string) (*Keyring, error) {
	key, err := decodeKey(b64)
	if err != nil {
		return nil, err
	}
	return NewKeyring(key)
}

// ParseSecretKeys reads ATTRCACHE_SECRET_KEYS: a comma list of id:base64, newest first.
func ParseSecretKeys(spec string) (*Keyring, error) {
	var ids []string
	var keys [][]byte
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, b64, ok := strings.Cut(item, ":")
		if !ok {
			return nil, errors.New("secret keys: each item must be id:base64")
		}
		key, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("secret key %q: %w", id, err)
		}
		ids = append(ids, id)
		keys = append(keys, key)
	}
	return newKeyring(ids, keys)
}

func decodeKey(b64 string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		key, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(b64), "="))
	}
	if err != nil {
		return nil, errors.New("the key is not base64")
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("the key is %d bytes, want 32", len(key))
	}
	return key, nil
}

func newKeyring(ids []string, keys [][]byte) (*Keyring, error) {
	if len(ids) == 0 {
		return nil, errors.New("secret keys: none given")
	}
	k := &Keyring{keys: make(map[string][]byte), aeads: make(map[string]cipher.AEAD)}
	for i, id := range ids {
		if !validKeyID(id) {
			return nil, fmt.Errorf("secret key id %q: use 1-32 letters, digits, '_' or '-'", id)
		}
		if _, dup := k.keys[id]; dup {
			return nil, fmt.Errorf("secret key id %q given twice", id)
		}
		if len(keys[i]) != 32 {
			return nil, fmt.Errorf("secret key %q is %d bytes, want 32", id, len(keys[i]))
		}
		k.ids = append(k.ids, id)
		k.keys[id] = append([]byte(nil), keys[i]...)
	}
	return k, nil
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// GenerateKey returns 32 random bytes, base64-encoded: a fresh ATTRCACHE_SECRET_KEY.
func GenerateKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func (k *Keyring) aead(id, purpose string) (cipher.AEAD, error) {
	name := id + "/" + purpose
	k.mu.RLock()
	a := k.aeads[name]
	k.mu.RUnlock()
	if a != nil {
		return a, nil
	}
	master, ok := k.keys[id]
	if !ok {
		return nil, ErrUndecryptable
	}
	sub, err := hkdf.Key(sha256.New, master, nil, "attrcache "+purpose, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, err
	}
	a, err = cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.aeads[name] = a
	k.mu.Unlock()
	return a, nil
}

// Seal encrypts plaintext with the newest key for purpose, binding it to ad (which Open must be
// given again), and returns the printable envelope.
func (k *Keyring) Seal(purpose string, plaintext, ad []byte) string {
	id := k.ids[0]
	a, err := k.aead(id, purpose)
	if err != nil {
		panic("attrcache: keyring: " + err.Error()) // keys were validated in newKeyring
	}
	buf := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	_, _ = rand.Read(buf)
	buf = a.Seal(buf, buf, plaintext, ad)
	return envelopePrefix + id + "." + envelopeEncoding.EncodeToString(buf)
}

// Open decrypts an envelope made by Seal for the same purpose and ad. An envelope of a key id the
// keyring does not have gives a *KeyNotConfiguredError (which is also ErrUndecryptable); anything
// else it cannot open gives ErrUndecryptable.
func (k *Keyring) Open(purpose, envelope string, ad []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(envelope, envelopePrefix)
	if !ok {
		return nil, ErrUndecryptable
	}
	id, b64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, ErrUndecryptable
	}
	if !k.Has(id) {
		if validKeyID(id) {
			return nil, &KeyNotConfiguredError{KeyID: id}
		}
		return nil, ErrUndecryptable
	}
	a, err := k.aead(id, purpose)
	if err != nil {
		return nil, ErrUndecryptable
	}
	raw, err := envelopeEncoding.DecodeString(b64)
	if err != nil || len(b64) != envelopeEncoding.EncodedLen(len(raw)) || len(raw) < a.NonceSize()+a.Overhead() {
		return nil, ErrUndecryptable // the length check refuses the line breaks the decoder skips
	}
	plain, err := a.Open(nil, raw[:a.NonceSize()], raw[a.NonceSize():], ad)
	if err != nil {
		return nil, ErrUndecryptable
	}
	return plain, nil
}

// IsEnvelope reports whether s has the form of a sealed value.
func IsEnvelope(s string) bool { return strings.HasPrefix(s, envelopePrefix) }

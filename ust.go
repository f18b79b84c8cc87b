package attrcache

import "errors"

// ErrBadUST is returned by ParseUST for anything that is not a UST this service issued under a
// key it still has.
var ErrBadUST = errors.New("not a valid UST")

var ustAD = []byte("ust")

// NewUST seals a raw session id and its owner's user id into the opaque token clients carry.
// Carrying the user id lets every UST call find the owner's cache keys without a look-up.
func NewUST(k *Keyring, rawSessionID, userID string) (string, error) {
	sid, ok1 := decodeCrockford(trimPrefix(rawSessionID, SessionIDPrefix))
	uid, ok2 := decodeCrockford(trimPrefix(userID, UserIDPrefix))
	if !ok1 || !ok2 {
		return "", errors.New("NewUST: malformed session or user id")
	}
	plain := make([]byte, 0, 32)
	plain = append(plain, sid[:]...)
	plain = append(plain, uid[:]...)
	return k.Seal(PurposeUST, plain, ustAD), nil
}

// ParseUST opens a token made by NewUST and returns the raw session id and user id it holds.
func ParseUST(k *Keyring, ust string) (rawSessionID, userID string, err error) {
	if len(ust) > 512 {
		return "", "", ErrBadUST
	}
	plain, err := k.Open(PurposeUST, ust, ustAD)
	if err != nil || len(plain) != 32 {
		return "", "", ErrBadUST
	}
	var sid, uid [16]byte
	copy(sid[:], plain[:16])
	copy(uid[:], plain[16:])
	return SessionIDPrefix + encodeCrockford(sid), UserIDPrefix + encodeCrockford(uid), nil
}

func trimPrefix(s, prefix string) string {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return "\x00" // never valid Crockford
	}
	return s[len(prefix):]
}

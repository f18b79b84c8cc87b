package sso

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Limits on the parameters read back from a stored hash, so that a damaged row cannot make a
// login allocate without bound; they are far above any sensible configuration.
const (
	maxHashMemoryKiB = 4 << 20 // 4 GiB
	maxHashTime      = 1 << 10
	maxHashLen       = 1 << 10
)

var b64 = base64.RawStdEncoding

// hashSlots bounds the argon2 computations that run at once to the CPUs Go may use. Each takes
// HashParams.MemoryKiB (19 MiB by default) for its length and is CPU-bound, so running more at
// once adds no throughput, only memory: a burst of logins waits here instead of growing the
// process by 19 MiB per login.
var hashSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// argon2Key is argon2.IDKey, run in one of hashSlots. Its memory is collected before the slot is
// given up, so that the next hash reuses it: else the garbage of a burst of logins (19 MiB each)
// piles up until the heap's next goal, several times the working set, and stays in the RSS.
func argon2Key(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	key := argon2.IDKey(password, salt, time, memory, threads, keyLen)
	runtime.GC()
	return key
}

// hashPassword returns the PHC string of password under p:
// $argon2id$v=19$m=<KiB>,t=<iterations>,p=<threads>$<salt>$<hash>, both in unpadded base64.
func hashPassword(p HashParams, password string) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("sso: password salt: %w", err)
	}
	key := argon2Key([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// errBadHash is returned for a stored hash that is not an argon2id PHC string this package made.
var errBadHash = errors.New("sso: the stored password hash is not a valid argon2id string")

// verifyPassword reports whether password matches encoded, recomputed with the parameters stored
// in encoded and compared in constant time. A malformed encoded gives errBadHash.
func verifyPassword(encoded, password string) (bool, error) {
	p, salt, want, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2Key([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parseHash(encoded string) (p HashParams, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errBadHash
	}
	memory, ok1 := hashParam(parts[3], 0, "m=", maxHashMemoryKiB)
	iterations, ok2 := hashParam(parts[3], 1, "t=", maxHashTime)
	threads, ok3 := hashParam(parts[3], 2, "p=", 255)
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if !ok1 || !ok2 || !ok3 || iterations < 1 || threads < 1 ||
		err1 != nil || err2 != nil || len(salt) == 0 || len(key) == 0 || len(key) > maxHashLen {
		return p, nil, nil, errBadHash
	}
	p = HashParams{Time: uint32(iterations), MemoryKiB: uint32(memory), Threads: uint8(threads)}
	return p, salt, key, nil
}

// hashParam reads the i-th item of "m=…,t=…,p=…", which must start with name and hold a number
// no greater than limit.
func hashParam(params string, i int, name string, limit uint64) (uint64, bool) {
	items := strings.Split(params, ",")
	if len(items) != 3 {
		return 0, false
	}
	digits, ok := strings.CutPrefix(items[i], name)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(digits, 10, 32)
	return v, err == nil && v <= limit
}

// randomToken returns 24 random bytes in unpadded base64url (32 characters): Zato's generated
// passwords and sign-up confirmation tokens.
func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

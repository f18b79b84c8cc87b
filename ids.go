package attrcache

import (
	"crypto/rand"
	"strings"
)

// Identifier prefixes, as Zato's.
const (
	UserIDPrefix    = "zusr"
	SessionIDPrefix = "zust"
)

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// idLen is the length of the random part of an identifier: 128 bits in 5-bit digits.
const idLen = 26

// NewUserID returns a fresh user id: "zusr" + 26 lower-case Crockford base32 digits of 128 random bits.
func NewUserID() string { return UserIDPrefix + encodeCrockford(random16()) }

// NewSessionID returns a fresh raw session id: "zust" + 26 lower-case Crockford base32 digits.
func NewSessionID() string { return SessionIDPrefix + encodeCrockford(random16()) }

func random16() [16]byte {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return b
}

// encodeCrockford writes 128 bits as 26 base32 digits, most significant first (the top digit holds
// the 3 highest bits, so the value is left-padded with zeros as a number would be).
func encodeCrockford(b [16]byte) string {
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	var out [idLen]byte
	for i := idLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// decodeCrockford reverses encodeCrockford; ok is false for anything that is not 26 valid digits
// of a 128-bit value.
func decodeCrockford(s string) (b [16]byte, ok bool) {
	if len(s) != idLen {
		return b, false
	}
	var hi, lo uint64
	for i := 0; i < idLen; i++ {
		d := strings.IndexByte(crockford, s[i])
		if d < 0 {
			return b, false
		}
		if i == 0 && d > 7 { // only 3 bits fit in the top digit
			return b, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(d)
	}
	for i := 0; i < 8; i++ {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	return b, true
}

// ValidUserID reports whether s has the shape of a user id made by NewUserID.
func ValidUserID(s string) bool {
	if !strings.HasPrefix(s, UserIDPrefix) {
		return false
	}
	_, ok := decodeCrockford(s[len(UserIDPrefix):])
	return ok
}

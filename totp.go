package attrcache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// TOTP as Zato uses it (RFC 6238): HMAC-SHA1, 6 digits, 30-second steps.
const (
	TOTPDigits = 6
	TOTPStep   = 30 * time.Second
)

// ErrBadTOTPKey is returned for a TOTP key that is not base32.
var ErrBadTOTPKey = errors.New("the TOTP key is not valid base32")

// NewTOTPKey returns a fresh TOTP key: 160 random bits as 32 upper-case base32 characters.
func NewTOTPKey() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.EncodeToString(b[:])
}

// DecodeTOTPKey reads a base32 TOTP key: case-insensitive, padding optional, spaces ignored.
func DecodeTOTPKey(key string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(key), " ", ""))
	s = strings.TrimRight(s, "=")
	if s == "" {
		return nil, ErrBadTOTPKey
	}
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, ErrBadTOTPKey
	}
	return b, nil
}

// TOTPCode returns the code of key for the step that holds t.
func TOTPCode(key []byte, t time.Time) string {
	return hotp(key, uint64(t.Unix()/int64(TOTPStep/time.Second)))
}

func hotp(key []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	code := make([]byte, TOTPDigits)
	for i := TOTPDigits - 1; i >= 0; i-- {
		code[i] = byte('0' + v%10)
		v /= 10
	}
	return string(code)
}

// VerifyTOTP reports whether code is the code of key for the step that holds now or the step
// before it. A code may be used more than once within those steps, as in Zato.
func VerifyTOTP(key []byte, code string, now time.Time) bool {
	code = strings.TrimSpace(code)
	if len(code) != TOTPDigits {
		return false
	}
	step := uint64(now.Unix() / int64(TOTPStep/time.Second))
	ok := 0
	for _, c := range []uint64{step, step - 1} {
		ok |= subtle.ConstantTimeCompare([]byte(hotp(key, c)), []byte(code))
	}
	return ok == 1
}

package attrcache

import (
	"strings"
	"unicode/utf8"
)

// PasswordPolicy is Zato's [password] section: what a new password must satisfy.
type PasswordPolicy struct {
	MinLength  int
	MaxLength  int
	RejectList []string // lower-cased entries; a password containing one is refused
}

// DefaultRejectList is Zato's default password.reject_list.
var DefaultRejectList = []string{
	"111111", "123123", "123321", "123456", "123qwe", "1q2w3e", "1q2w3e4r", "1q2w3e4r5t",
	"222222", "333333", "444444", "555555", "654321", "666666", "777777", "888888", "999999",
	"987654321", "google", "letmein", "mynoob", "password", "qwerty", "zxcvbnm",
}

// Validate checks a new password in Zato's order: too short (E003002), too long (E003003), then
// containing an entry of the reject list, case-insensitively (E003001). Length is in characters.
func (p PasswordPolicy) Validate(password string) error {
	n := utf8.RuneCountInString(password)
	if n < p.MinLength {
		return Denied(CodePasswordTooShort, "the password is shorter than %d characters", p.MinLength)
	}
	if p.MaxLength > 0 && n > p.MaxLength {
		return Denied(CodePasswordTooLong, "the password is longer than %d characters", p.MaxLength)
	}
	lower := strings.ToLower(password)
	for _, bad := range p.RejectList {
		if bad != "" && strings.Contains(lower, strings.ToLower(bad)) {
			return Denied(CodePasswordInvalid, "the password contains a rejected word")
		}
	}
	return nil
}

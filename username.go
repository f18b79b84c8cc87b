package attrcache

import (
	"unicode"
	"unicode/utf8"
)

// MaxUsernameChars is the longest username, in characters: what the username column holds.
const MaxUsernameChars = 191

// CheckUsername returns nil when username may name a user, and otherwise the error a client
// sees: E001001 when it is empty, is not UTF-8 or holds a character that cannot be seen or
// breaks a line (a control character, a format character of category Cf such as U+200B or
// U+FEFF, a line or paragraph separator); E001004 when it starts or ends with white space;
// E001003 when it is longer than MaxUsernameChars characters. So two usernames that pass never
// differ only in characters a reader cannot see or in white space at their ends.
func CheckUsername(username string) error {
	if username == "" {
		return Denied(CodeUsernameInvalid, "a username is required")
	}
	if !utf8.ValidString(username) {
		return Denied(CodeUsernameInvalid, "the username is not valid UTF-8")
	}
	first, _ := utf8.DecodeRuneInString(username)
	last, _ := utf8.DecodeLastRuneInString(username)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return Denied(CodeUsernameWhitespace, "the username starts or ends with white space")
	}
	chars := 0
	for _, r := range username {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return Denied(CodeUsernameInvalid, "the username holds a control, format or line-breaking character (U+%04X)", r)
		}
		chars++
	}
	if chars > MaxUsernameChars {
		return Denied(CodeUsernameTooLong, "the username is longer than %d characters", MaxUsernameChars)
	}
	return nil
}

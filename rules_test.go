package attrcache_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

func TestNewIDs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		new    func() string
		prefix string
	}{
		{"user", attrcache.NewUserID, "zusr"},
		{"session", attrcache.NewSessionID, "zust"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			for i := 0; i < 1000; i++ {
				id := tc.new()
				if len(id) != 30 || !strings.HasPrefix(id, tc.prefix) {
					t.Fatalf("id %q: want %s + 26 characters", id, tc.prefix)
				}
				if strings.Trim(id[4:], "0123456789abcdefghjkmnpqrstvwxyz") != "" {
					t.Fatalf("id %q: not lower-case Crockford base32", id)
				}
				if seen[id] {
					t.Fatalf("id %q repeated", id)
				}
				seen[id] = true
			}
		})
	}
	if !attrcache.ValidUserID(attrcache.NewUserID()) {
		t.Error("ValidUserID rejects a fresh user id")
	}
	id := attrcache.NewUserID()
	for _, bad := range []string{"", "zusr", "zust" + strings.Repeat("0", 26), "zusr" + strings.Repeat("z", 26), "zusr" + strings.Repeat("0", 25) + "i",
		id + " ", " " + id, id + "\x00", strings.ToUpper(id), "ZUSR" + id[4:], id + "0", id[:len(id)-1]} {
		if attrcache.ValidUserID(bad) {
			t.Errorf("ValidUserID(%q) = true, want false", bad)
		}
	}
}

func TestFormatTime(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05"},
		{time.Date(2026, 1, 2, 3, 4, 5, 120000, time.UTC), "2026-01-02T03:04:05.000120"},
		{time.Date(2026, 1, 2, 3, 4, 5, 999, time.UTC), "2026-01-02T03:04:05"},
		{time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("x", 3600)), "2026-01-02T03:04:05"},
		{attrcache.NeverExpires, "9999-12-31T00:00:00"},
	} {
		if got := attrcache.FormatTime(tc.in); got != tc.want {
			t.Errorf("FormatTime(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, in := range []string{"2030-05-06T07:08:09", "2030-05-06 07:08:09", "2030-05-06T07:08:09Z", "2030-05-06T09:08:09+02:00"} {
		got, err := attrcache.ParseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, err := attrcache.ParseTime("2030-05-06"); err != nil || !got.Equal(time.Date(2030, 5, 6, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseTime(date) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "tomorrow", "2030-13-01", "12"} {
		if _, err := attrcache.ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) succeeded, want an error", bad)
		}
	}
}

func TestTOTPVectors(t *testing.T) {
	// RFC 6238 appendix B, SHA1, truncated to 6 digits.
	key := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		code string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"},
	} {
		if got := attrcache.TOTPCode(key, time.Unix(tc.unix, 0)); got != tc.code {
			t.Errorf("TOTPCode(t=%d) = %s, want %s", tc.unix, got, tc.code)
		}
	}
}

func TestVerifyTOTPWindow(t *testing.T) {
	key, err := attrcache.DecodeTOTPKey(attrcache.NewTOTPKey())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_015, 0) // 15 s into a step
	code := attrcache.TOTPCode(key, now)
	for _, tc := range []struct {
		name string
		at   time.Time
		want bool
	}{
		{"same step", now, true},
		{"same step twice", now.Add(10 * time.Second), true},
		{"next step accepts the previous code", now.Add(30 * time.Second), true},
		{"two steps later", now.Add(60 * time.Second), false},
		{"the step before", now.Add(-30 * time.Second), false},
	} {
		if got := attrcache.VerifyTOTP(key, code, tc.at); got != tc.want {
			t.Errorf("%s: VerifyTOTP = %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if attrcache.VerifyTOTP(key, bad, now) {
			t.Errorf("VerifyTOTP(%q) = true", bad)
		}
	}
}

func TestDecodeTOTPKey(t *testing.T) {
	want, _ := attrcache.DecodeTOTPKey("JBSWY3DPEHPK3PXP")
	for _, in := range []string{"jbswy3dpehpk3pxp", "JBSW Y3DP EHPK 3PXP", "JBSWY3DPEHPK3PXP"} {
		got, err := attrcache.DecodeTOTPKey(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("DecodeTOTPKey(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1", "JBSWY3DPEHPK3PX!", "===="} {
		if _, err := attrcache.DecodeTOTPKey(bad); !errors.Is(err, attrcache.ErrBadTOTPKey) {
			t.Errorf("DecodeTOTPKey(%q) error = %v, want ErrBadTOTPKey", bad, err)
		}
	}
}

func TestPasswordPolicy(t *testing.T) {
	p := attrcache.PasswordPolicy{MinLength: 8, MaxLength: 12, RejectList: attrcache.DefaultRejectList}
	for _, tc := range []struct {
		pw, code string
	}{
		{"short", attrcache.CodePasswordTooShort},
		{"ééééééé", attrcache.CodePasswordTooShort}, // 7 characters, 14 bytes
		{"ééééééééééééé", attrcache.CodePasswordTooLong},
		{"MyPassWord1", attrcache.CodePasswordInvalid},
		{"xxQWERTYxx", attrcache.CodePasswordInvalid},
		{"correct-horse", attrcache.CodePasswordTooLong},
		{"hor5e-batt", ""},
	} {
		if got := attrcache.CodeOf(p.Validate(tc.pw)); got != tc.code {
			t.Errorf("Validate(%q) code = %q, want %q", tc.pw, got, tc.code)
		}
	}
}

func TestKeyringSealOpen(t *testing.T) {
	k, err := attrcache.ParseSecretKey(attrcache.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed := k.Seal(attrcache.PurposeAttr, []byte("secret"), []byte("zusr1/name"))
	if strings.Contains(sealed, "secret") || !attrcache.IsEnvelope(sealed) {
		t.Fatalf("sealed value %q holds the plaintext or is no envelope", sealed)
	}
	if got, err := k.Open(attrcache.PurposeAttr, sealed, []byte("zusr1/name")); err != nil || string(got) != "secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for _, tc := range []struct {
		name, purpose, env, ad string
	}{
		{"other associated data", attrcache.PurposeAttr, sealed, "zusr2/name"},
		{"other purpose", attrcache.PurposeEmail, sealed, "zusr1/name"},
		{"tampered", attrcache.PurposeAttr, sealed[:len(sealed)-2] + "AA", "zusr1/name"},
		{"unknown key id", attrcache.PurposeAttr, strings.Replace(sealed, "ac1.k1.", "ac1.k9.", 1), "zusr1/name"},
		{"not an envelope", attrcache.PurposeAttr, "secret", "zusr1/name"},
		{"short", attrcache.PurposeAttr, "ac1.k1.AAAA", "zusr1/name"},
	} {
		if _, err := k.Open(tc.purpose, tc.env, []byte(tc.ad)); !errors.Is(err, attrcache.ErrUndecryptable) {
			t.Errorf("%s: Open error = %v, want ErrUndecryptable", tc.name, err)
		}
	}
}

func TestKeyringRotation(t *testing.T) {
	oldKey, newKey := attrcache.GenerateKey(), attrcache.GenerateKey()
	before, err := attrcache.ParseSecretKeys("old:" + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed := before.Seal(attrcache.PurposeEmail, []byte("a@example.com"), nil)
	after, err := attrcache.ParseSecretKeys("new:" + newKey + ", old:" + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := after.Open(attrcache.PurposeEmail, sealed, nil); err != nil || string(got) != "a@example.com" {
		t.Fatalf("rotated keyring cannot open an old value: %q, %v", got, err)
	}
	if resealed := after.Seal(attrcache.PurposeEmail, []byte("x"), nil); !strings.HasPrefix(resealed, "ac1.new.") {
		t.Errorf("Seal used %q, want the newest key", resealed[:8])
	}
	for _, bad := range []string{"", "nocolon", "a:" + oldKey + ",a:" + newKey, "bad.id:" + oldKey, "k:c2hvcnQ="} {
		if _, err := attrcache.ParseSecretKeys(bad); err == nil {
			t.Errorf("ParseSecretKeys(%q) succeeded", bad)
		} else if strings.Contains(err.Error(), oldKey) {
			t.Errorf("error %q shows the key", err)
		}
	}
}

func TestUST(t *testing.T) {
	k, _ := attrcache.ParseSecretKey(attrcache.GenerateKey())
	sid, uid := attrcache.NewSessionID(), attrcache.NewUserID()
	ust, err := attrcache.NewUST(k, sid, uid)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ust, sid[4:]) || strings.Contains(ust, uid[4:]) {
		t.Fatalf("UST %q shows its ids", ust)
	}
	gotSID, gotUID, err := attrcache.ParseUST(k, ust)
	if err != nil || gotSID != sid || gotUID != uid {
		t.Fatalf("ParseUST = %q, %q, %v; want %q, %q", gotSID, gotUID, err, sid, uid)
	}
	other, _ := attrcache.ParseSecretKey(attrcache.GenerateKey())
	sealedElse := k.Seal(attrcache.PurposeAttr, make([]byte, 32), []byte("ust"))
	for name, bad := range map[string]string{
		"empty": "", "raw session id": sid, "garbage": "gAAAAABk", "huge": strings.Repeat("a", 4096),
		"attribute envelope": sealedElse,
	} {
		if _, _, err := attrcache.ParseUST(k, bad); !errors.Is(err, attrcache.ErrBadUST) {
			t.Errorf("%s: ParseUST error = %v, want ErrBadUST", name, err)
		}
	}
	if _, _, err := attrcache.ParseUST(other, ust); !errors.Is(err, attrcache.ErrBadUST) {
		t.Errorf("a UST of another key parsed: %v", err)
	}
	if _, err := attrcache.NewUST(k, "zustbad", uid); err == nil {
		t.Error("NewUST accepted a malformed session id")
	}
}

func TestHashSessionID(t *testing.T) {
	a, b := attrcache.HashSessionID("zust1"), attrcache.HashSessionID("zust2")
	if len(a) != 64 || a == b || a != attrcache.HashSessionID("zust1") {
		t.Errorf("HashSessionID: %q, %q", a, b)
	}
}

func TestErrorKinds(t *testing.T) {
	cause := errors.New("dial tcp: refused")
	err := attrcache.Unavailable(cause)
	if !errors.Is(err, cause) || err.Kind != attrcache.KindUnavailable || err.Code != attrcache.CodeInternalError {
		t.Errorf("Unavailable = %+v", err)
	}
	if got := attrcache.AsError(errors.New("x")); got.Kind != attrcache.KindInternal {
		t.Errorf("AsError(plain) kind = %v, want internal", got.Kind)
	}
	if attrcache.CodeOf(nil) != "" || attrcache.CodeOf(attrcache.NotAllowed()) != attrcache.CodeNotAllowed {
		t.Error("CodeOf")
	}
}

func TestAttrRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"ünïcode name", true}, {strings.Repeat("a", 191), true},
		{"", false}, {strings.Repeat("a", 192), false}, {strings.Repeat("é", 96), false},
		{"tab\there", false}, {"nl\n", false}, {"del\x7f", false}, {"c1\u0085", false}, {"bad\xff", false},
	} {
		if got := attrcache.ValidAttrName(tc.name); got != tc.ok {
			t.Errorf("ValidAttrName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
	arrival := time.Date(2026, 1, 1, 0, 0, 0, 500, time.UTC)
	if attrcache.AttrExpiry(arrival, 0) != nil || attrcache.AttrExpiry(arrival, -5) != nil {
		t.Error("AttrExpiry(0 or negative) is not nil")
	}
	if got := attrcache.AttrExpiry(arrival, 3600); !got.Equal(arrival.Add(time.Hour)) {
		t.Errorf("AttrExpiry(3600) = %v", got)
	}
	if got := attrcache.AttrExpiry(arrival, 1<<62); !got.Equal(attrcache.NeverExpires) {
		t.Errorf("AttrExpiry(huge) = %v, want NeverExpires", got)
	}
	ad := attrcache.AttrAD(attrcache.AttrScope{UserID: "u", Session: "s"}, "n")
	if bytes.Equal(ad, attrcache.AttrAD(attrcache.AttrScope{UserID: "u"}, "sn")) {
		t.Error("AttrAD does not separate scope from name")
	}
}

func TestCheckUsername(t *testing.T) {
	for _, tc := range []struct {
		username string
		want     string // the code, "" when the username may be used
	}{
		{"alice", ""},
		{"Alice Smith", ""},
		{"élodie", ""},
		{"e\u0301lodie", ""},
		{"李小龙", ""},
		{"a.b-c_d@example.com", ""},
		{strings.Repeat("é", attrcache.MaxUsernameChars), ""},
		{"", attrcache.CodeUsernameInvalid},
		{"alice ", attrcache.CodeUsernameWhitespace},
		{"alice  ", attrcache.CodeUsernameWhitespace},
		{" alice", attrcache.CodeUsernameWhitespace},
		{"\talice", attrcache.CodeUsernameWhitespace},
		{"alice\n", attrcache.CodeUsernameWhitespace},
		{"alice\u00a0", attrcache.CodeUsernameWhitespace},
		{"\u3000alice", attrcache.CodeUsernameWhitespace},
		{"alice\u2028", attrcache.CodeUsernameWhitespace},
		{" ", attrcache.CodeUsernameWhitespace},
		{"\u200balice", attrcache.CodeUsernameInvalid},
		{"alice\u200b", attrcache.CodeUsernameInvalid},
		{"al\u200cice", attrcache.CodeUsernameInvalid},
		{"al\u200dice", attrcache.CodeUsernameInvalid},
		{"al\u2060ice", attrcache.CodeUsernameInvalid},
		{"\ufeffalice", attrcache.CodeUsernameInvalid},
		{"al\u00adice", attrcache.CodeUsernameInvalid},
		{"al\u202eice", attrcache.CodeUsernameInvalid},
		{"alice\U000e0041", attrcache.CodeUsernameInvalid},
		{"al\x00ice", attrcache.CodeUsernameInvalid},
		{"al\tice", attrcache.CodeUsernameInvalid},
		{"al\x7fice", attrcache.CodeUsernameInvalid},
		{"al\u0085ice", attrcache.CodeUsernameInvalid},
		{"al\u2029ice", attrcache.CodeUsernameInvalid},
		{"al\xffice", attrcache.CodeUsernameInvalid},
		{strings.Repeat("a", attrcache.MaxUsernameChars+1), attrcache.CodeUsernameTooLong},
	} {
		err := attrcache.CheckUsername(tc.username)
		if got := attrcache.CodeOf(err); got != tc.want {
			t.Errorf("CheckUsername(%q) = %v, want code %q", tc.username, err, tc.want)
		}
		if err != nil && attrcache.AsError(err).Kind != attrcache.KindDenied {
			t.Errorf("CheckUsername(%q): kind %v, want denied", tc.username, attrcache.AsError(err).Kind)
		}
	}
}

package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/attrcache/attrcache"
)

const (
	pathPassword     = "/zato/sso/user/password"
	pathApprove      = "/zato/sso/user/approve"
	pathReject       = "/zato/sso/user/reject"
	pathLock         = "/zato/sso/user/lock"
	pathSearch       = "/zato/sso/user/search"
	pathSignup       = "/zato/sso/user/signup"
	pathAttrExists   = "/zato/sso/user/attr/exists"
	pathAttrNames    = "/zato/sso/user/attr/names"
	pathSessionAttr  = "/zato/sso/session/attr"
	pathSessionList  = "/zato/sso/user/session/list"
	attrOriginal     = `"original"`
	identOwnerPass   = "0wner-of-attrs"
	identAdminPass   = "Adm1n-of-ids"
	identSpellerName = "alice"
	identSpellerPass = "Al1ce-one-form"
)

// malformedUserIDs returns spellings of userID that name no user: each differs from it in bytes
// that a PAD SPACE or case-insensitive comparison, or a sloppy parser, would overlook.
func malformedUserIDs(userID string) []struct{ form, userID string } {
	return []struct{ form, userID string }{
		{"padded", userID + " "},
		{"padded twice", userID + "  "},
		{"leading space", " " + userID},
		{"tab-padded", userID + "\t"},
		{"re-cased", strings.ToUpper(userID)},
		{"over-long", userID + "x"},
		{"truncated", userID[:len(userID)-1]},
	}
}

// routeCall is one request of the tests below, sent with the caller's ust, current_app and a
// user_id; extra holds the route's other input.
type routeCall struct {
	method, path string
	extra        map[string]any
}

func (r routeCall) String() string { return r.method + " " + r.path + " " + fmt.Sprint(r.extra) }

// userIDRoutes are every route that takes a user_id, with input that would change the user or
// their attributes if the user_id named them.
var userIDRoutes = []routeCall{
	{http.MethodPut, pathUserAttr, map[string]any{"name": "a", "value": "overwritten"}},
	{http.MethodPut, pathUserAttr, map[string]any{"data": []any{map[string]any{"name": "a", "value": "overwritten"}}}},
	{http.MethodPost, pathUserAttr, map[string]any{"name": "created", "value": "created"}},
	{http.MethodPost, pathUserAttr, map[string]any{"data": []any{map[string]any{"name": "created", "value": "created"}}}},
	{http.MethodPatch, pathUserAttr, map[string]any{"name": "a", "value": "updated"}},
	{http.MethodPatch, pathUserAttr, map[string]any{"data": []any{map[string]any{"name": "a", "value": "updated"}}}},
	{http.MethodDelete, pathUserAttr, map[string]any{"name": "a"}},
	{http.MethodDelete, pathUserAttr, map[string]any{"data": []string{"a"}}},
	{http.MethodGet, pathUserAttr, map[string]any{"name": "a"}},
	{http.MethodGet, pathUserAttr, map[string]any{"data": []string{"a"}}},
	{http.MethodGet, pathAttrExists, map[string]any{"name": "a"}},
	{http.MethodGet, pathAttrNames, map[string]any{}},
	{http.MethodGet, pathUser, map[string]any{}},
	{http.MethodPatch, pathUser, map[string]any{"display_name": "Overwritten"}},
	{http.MethodPatch, pathUser, map[string]any{"is_locked": true}},
	{http.MethodDelete, pathUser, map[string]any{}},
	{http.MethodPost, pathApprove, map[string]any{}},
	{http.MethodPost, pathReject, map[string]any{}},
	{http.MethodPost, pathLock, map[string]any{}},
	{http.MethodDelete, pathLock, map[string]any{}},
	{http.MethodPatch, pathPassword, map[string]any{"new_password": "Ov3rwritten-pass", "must_change": true}},
	{http.MethodPatch, pathTOTP, map[string]any{"totp_key": "", "totp_label": "overwritten"}},
}

// identSetup creates a super-user and a regular user who owns the attribute "a" (read once, so
// that Redis holds it), starts serve and returns it with both users' USTs and the owner's id.
type identSetup struct {
	s                    *servingTest
	db                   *sql.DB
	ownerID              string
	adminName, ownerName string
	adminUST, ownerUST   string
}

func newIdentSetup(t *testing.T, tag string, extra map[string]string) *identSetup {
	t.Helper()
	x := &identSetup{adminName: tag + "-admin", ownerName: tag + "-owner"}
	createUser(t, "create-super-user", x.adminName, identAdminPass)
	x.ownerID = createUser(t, "create-user", x.ownerName, identOwnerPass)
	s := startServe(t, extra)
	x.s, x.db = s, openRawDB(t)
	x.adminUST = s.login(t, x.adminName, identAdminPass, "")
	x.ownerUST = s.login(t, x.ownerName, identOwnerPass, "")
	s.mustCall(t, http.MethodPut, pathUserAttr, map[string]any{"ust": x.ownerUST, "current_app": testApp, "name": "a", "value": "original"})
	if got := x.ownerReads(t); got != attrOriginal {
		t.Fatalf("the owner reads a = %s right after setting it, want %s", got, attrOriginal)
	}
	return x
}

// openRawDB opens the test database with database/sql alone, to see what MySQL holds without
// any of the service's code in between.
func openRawDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", testDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// ownerReads returns the JSON value of the owner's attribute "a" as the owner reads it over REST
// (from Redis when it holds it), or "(none)".
func (x *identSetup) ownerReads(t *testing.T) string {
	t.Helper()
	answer := x.s.mustCall(t, http.MethodGet, pathUserAttr, map[string]any{"ust": x.ownerUST, "current_app": testApp, "name": "a"})
	if answer["found"] != true {
		return "(none)"
	}
	value, err := json.Marshal(answer["value"])
	if err != nil {
		t.Fatal(err)
	}
	return string(value)
}

// mysqlHolds returns the owner's attribute "a" as MySQL holds it, read with plain SQL, or
// "(none)".
func (x *identSetup) mysqlHolds(t *testing.T) string {
	t.Helper()
	var value string
	err := x.db.QueryRowContext(t.Context(),
		"SELECT value FROM sso_attr WHERE user_id = ? AND ust_hash = '' AND name = 'a'", x.ownerID).Scan(&value)
	switch {
	case err == sql.ErrNoRows:
		return "(none)"
	case err != nil:
		t.Fatal(err)
	}
	return value
}

// mysqlSnapshot returns, as text, every row of MySQL that a request naming the owner under any
// spelling could have changed: every user (with what the user routes write) and every
// attribute whose user_id looks like the owner's.
func (x *identSetup) mysqlSnapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	users, err := x.db.QueryContext(t.Context(), `SELECT HEX(user_id), HEX(username), version, is_locked,
		approval_status, SHA2(password_hash, 256), SHA2(COALESCE(totp_key, ''), 256), COALESCE(display_name, '')
		FROM sso_user ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	writeRows(t, &b, users)
	attrs, err := x.db.QueryContext(t.Context(), `SELECT HEX(user_id), HEX(ust_hash), HEX(name), value, version
		FROM sso_attr WHERE LOWER(user_id) LIKE CONCAT('%', ?, '%') ORDER BY 1, 2, 3`, x.ownerID[:len(x.ownerID)-1])
	if err != nil {
		t.Fatal(err)
	}
	writeRows(t, &b, attrs)
	return b.String()
}

// writeRows writes every row of rows to b, one line each.
func writeRows(t *testing.T, b *strings.Builder, rows *sql.Rows) {
	t.Helper()
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	values := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range values {
		ptrs[i] = &values[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			fmt.Fprintf(b, "%s|", v)
		}
		b.WriteString("\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// wantError fails the test unless the answer is HTTP 403 with status error and sub_status code.
func wantError(t *testing.T, what string, status int, answer map[string]any, code string) {
	t.Helper()
	if status != http.StatusForbidden || answer["status"] != "error" || !slices.Equal(subStatus(answer), []string{code}) {
		shown := maps.Clone(answer)
		if _, ok := shown["ust"]; ok {
			shown["ust"] = "(a UST)"
		}
		t.Errorf("%s: HTTP %d %v, want 403 with sub_status [%s]", what, status, shown, code)
	}
}

func subStatus(answer map[string]any) []string {
	list, _ := answer["sub_status"].([]any)
	codes := make([]string, len(list))
	for i, c := range list {
		codes[i], _ = c.(string)
	}
	return codes
}

// TestMalformedUserIDNamesNoUser sends every route that takes a user_id a spelling of a user's id
// that differs from it (padded, re-cased, over-long, truncated): a super-user gets E005001, a
// regular user what naming another user gives, nobody a 500, and nothing is written, so the
// owner goes on reading what MySQL holds.
func TestMalformedUserIDNamesNoUser(t *testing.T) {
	x := newIdentSetup(t, "malformed-id", nil)
	before := x.mysqlSnapshot(t)

	for _, bad := range malformedUserIDs(x.ownerID) {
		for _, route := range userIDRoutes {
			body := map[string]any{"ust": x.adminUST, "current_app": testApp, "user_id": bad.userID}
			for k, v := range route.extra {
				body[k] = v
			}
			status, answer := x.s.call(t, route.method, route.path, body)
			wantError(t, fmt.Sprintf("super-user, %s user_id, %s", bad.form, route), status, answer, attrcache.CodeNotAllowed)
		}
		status, answer := x.s.call(t, http.MethodGet, pathSearch,
			map[string]any{"ust": x.adminUST, "current_app": testApp, "user_id": bad.userID})
		if status != http.StatusOK || answer["status"] != "ok" || answer["total"] != 0.0 {
			t.Errorf("search for the %s user_id: HTTP %d %v, want 200 and no match", bad.form, status, answer)
		}
	}

	// Where user_id is required, an empty one names nobody either; deleting nobody is E008001.
	for _, route := range []routeCall{
		{http.MethodPost, pathApprove, nil}, {http.MethodPost, pathReject, nil},
		{http.MethodPost, pathLock, nil}, {http.MethodDelete, pathLock, nil}, {http.MethodDelete, pathUser, nil},
	} {
		want := attrcache.CodeNotAllowed
		if route.path == pathUser {
			want = attrcache.CodeInvalidOperation
		}
		status, answer := x.s.call(t, route.method, route.path, map[string]any{"ust": x.adminUST, "current_app": testApp, "user_id": ""})
		wantError(t, fmt.Sprintf("super-user, empty user_id, %s", route), status, answer, want)
	}

	// A regular user naming their own id misspelt names another user.
	regularRoutes := []struct {
		route routeCall
		code  string
	}{
		{userIDRoutes[0], attrcache.CodeNotAllowed},  // PUT attr
		{userIDRoutes[6], attrcache.CodeNotAllowed},  // DELETE attr
		{userIDRoutes[8], attrcache.CodeNotAllowed},  // GET attr
		{userIDRoutes[11], attrcache.CodeNotAllowed}, // names
		{userIDRoutes[12], attrcache.CodeNotAllowed}, // GET user
		{userIDRoutes[13], attrcache.CodeInvalidInput},
		{routeCall{http.MethodPatch, pathPassword, map[string]any{"old_password": identOwnerPass, "new_password": "Ov3rwritten-pass"}}, attrcache.CodeInvalidInput},
		{userIDRoutes[21], attrcache.CodeInvalidInput}, // TOTP
	}
	for _, bad := range malformedUserIDs(x.ownerID) {
		for _, r := range regularRoutes {
			body := map[string]any{"ust": x.ownerUST, "current_app": testApp, "user_id": bad.userID}
			for k, v := range r.route.extra {
				body[k] = v
			}
			status, answer := x.s.call(t, r.route.method, r.route.path, body)
			wantError(t, fmt.Sprintf("the owner, %s user_id, %s", bad.form, r.route), status, answer, r.code)
		}
	}

	// A session attribute's target_ust misspelt names no session.
	for _, target := range []string{x.ownerUST + " ", strings.ToUpper(x.ownerUST), x.ownerUST + "x", x.ownerUST[:len(x.ownerUST)-1], ""} {
		status, answer := x.s.call(t, http.MethodPut, pathSessionAttr,
			map[string]any{"ust": x.adminUST, "current_app": testApp, "target_ust": target, "name": "a", "value": "overwritten"})
		wantError(t, fmt.Sprintf("session attribute with target_ust %q", target), status, answer, attrcache.CodeNoSuchSession)
	}

	if after := x.mysqlSnapshot(t); after != before {
		t.Errorf("MySQL changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	held, read := x.mysqlHolds(t), x.ownerReads(t)
	if held != attrOriginal || read != held {
		t.Errorf("the owner reads a = %s and MySQL holds %s, want both %s", read, held, attrOriginal)
	}
}

// TestUsernamesHaveOneSpelling logs in with spellings of a username that differ from it in
// white space or invisible characters, which must not log in, and creates, signs up and renames
// users to such spellings, which must be refused with the username's codes.
func TestUsernamesHaveOneSpelling(t *testing.T) {
	x := newIdentSetup(t, "spelling", map[string]string{"ATTRCACHE_SIGNUP_APPS": testApp, "ATTRCACHE_SIGNUP_THROTTLE_PER_ADDRESS": "0"})
	createUser(t, "create-user", identSpellerName, identSpellerPass)

	for _, spelling := range []string{"alice ", "alice  ", " alice", "alice\t", "\u200balice", "alice\u200b", "ali\u200dce", "\ufeffalice", "ALICE"} {
		status, answer := x.s.call(t, http.MethodPost, pathLogin,
			map[string]any{"username": spelling, "password": identSpellerPass, "current_app": testApp})
		wantError(t, fmt.Sprintf("login as %q", spelling), status, answer, attrcache.CodeNotAllowed)
		if answer["ust"] != nil {
			t.Errorf("login as %q answered a UST", spelling)
		}
	}
	x.s.login(t, identSpellerName, identSpellerPass, "")

	refused := []struct {
		username, code string
	}{
		{"bob-ident ", attrcache.CodeUsernameWhitespace},
		{" bob-ident", attrcache.CodeUsernameWhitespace},
		{"bob-ident\n", attrcache.CodeUsernameWhitespace},
		{"bob-ident\u00a0", attrcache.CodeUsernameWhitespace},
		{"bob-ident\u3000", attrcache.CodeUsernameWhitespace},
		{"bob\u200bident", attrcache.CodeUsernameInvalid},
		{"bob\u200cident", attrcache.CodeUsernameInvalid},
		{"bob\u200dident", attrcache.CodeUsernameInvalid},
		{"bob\u2060ident", attrcache.CodeUsernameInvalid},
		{"\ufeffbob-ident", attrcache.CodeUsernameInvalid},
		{"bob\u00adident", attrcache.CodeUsernameInvalid},
		{"bob\u202eident", attrcache.CodeUsernameInvalid},
		{"bob\x00ident", attrcache.CodeUsernameInvalid},
		{"bob\x7fident", attrcache.CodeUsernameInvalid},
		{"bob\u0085ident", attrcache.CodeUsernameInvalid},
	}
	usersBefore := x.userCount(t)
	for _, tt := range refused {
		status, answer := x.s.call(t, http.MethodPost, pathUser,
			map[string]any{"ust": x.adminUST, "current_app": testApp, "username": tt.username, "password": "Cr3ated-pass"})
		wantError(t, fmt.Sprintf("create %q", tt.username), status, answer, tt.code)

		if _, err := runCLI(t, "", "sso", "create-user", tt.username, "--password", "Cr3ated-pass"); err == nil || !strings.Contains(err.Error(), tt.code) {
			t.Errorf("sso create-user %q: error %v, want one with %s", tt.username, err, tt.code)
		}
		if _, err := runCLI(t, "", "sso", "create-super-user", tt.username, "--password", "Cr3ated-pass"); err == nil || !strings.Contains(err.Error(), tt.code) {
			t.Errorf("sso create-super-user %q: error %v, want one with %s", tt.username, err, tt.code)
		}

		signupCode := tt.code
		if strings.ContainsFunc(tt.username, unicode.IsSpace) { // sign-up refuses white space anywhere
			signupCode = attrcache.CodeUsernameWhitespace
		}
		status, answer = x.s.call(t, http.MethodPost, pathSignup,
			map[string]any{"current_app": testApp, "username": tt.username, "password": "S1gned-up-pass", "app_list": []string{testApp}})
		wantError(t, fmt.Sprintf("sign up as %q", tt.username), status, answer, signupCode)

		for _, who := range []struct{ name, ust, userID string }{{"the owner", x.ownerUST, ""}, {"a super-user", x.adminUST, x.ownerID}} {
			body := map[string]any{"ust": who.ust, "current_app": testApp, "username": tt.username}
			if who.userID != "" {
				body["user_id"] = who.userID
			}
			status, answer = x.s.call(t, http.MethodPatch, pathUser, body)
			wantError(t, fmt.Sprintf("%s renaming the owner to %q", who.name, tt.username), status, answer, tt.code)
		}
	}
	if got := x.userCount(t); got != usersBefore {
		t.Errorf("MySQL holds %d users after the refused creations, want %d", got, usersBefore)
	}
	var username string
	if err := x.db.QueryRowContext(t.Context(), "SELECT username FROM sso_user WHERE user_id = ?", x.ownerID).Scan(&username); err != nil || username != x.ownerName {
		t.Errorf("the owner's username in MySQL is %q (%v) after the refused renames, want %q", username, err, x.ownerName)
	}
}

func (x *identSetup) userCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := x.db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM sso_user").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

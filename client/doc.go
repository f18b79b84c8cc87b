// Package client is a Go client of attrcache's REST API: the Zato SSO paths under /zato/sso
// (users, sessions, and user and session attributes).
//
// A [Client] holds the base URL, the current_app every request sends and one *http.Client whose
// keep-alive connections all calls share; it is safe for concurrent use. [Client.Login] opens a
// [Session], whose methods are the calls a UST authenticates:
//
//	c, err := client.New("http://127.0.0.1:17010", "CRM")
//	s, err := c.Login(ctx, client.Credentials{Username: "alice", Password: pw})
//	err = s.UserAttrs("").Set(ctx, "theme", "dark", client.ExpiresIn(time.Hour))
//
// Every call honours its context and, unless [WithTimeout] says otherwise, a deadline of its
// own. A refused call returns an [*Error] carrying the HTTP status and Zato's status, sub_status
// codes, cid and message; errors.Is(err, client.CodeNotAllowed) tests for one code, and
// [CodeOf] returns the first. A login whose password is about to expire succeeds: its session's
// Warnings holds W003005.
//
// Every attribute answers its [Attr.Version]. [IfVersion] makes a write or delete a
// compare-and-set: a version that does not match fails it with HTTP 409 and
// [CodeVersionMismatch], nothing written. [Atomic](false) applies each item of a many call on its
// own, and [Results] returns each item's new version or error.
//
// Calls that are safe to repeat (reads, PUT set, DELETE) are retried after a 502, 503 or 504
// answer or a failed connection, a bounded number of times with jittered exponential backoff
// ([RetryPolicy]); the others (create, login, logout, update, password change, lock, approve…)
// are never retried, nor is a conditional write or delete ([IfVersion]).
//
// Every input, on every verb, goes in a JSON body (as Zato's own clients send it), so USTs and
// passwords never appear in a URL. The package imports only the standard library.
package client

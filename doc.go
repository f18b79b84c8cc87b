// Package attrcache is the domain of attrcache, a Go implementation of Zato SSO's users, sessions
// and user attributes: the entity types, the store interfaces that persist (MySQL) implements and
// cache (Redis) decorates, the error kinds and Zato status codes, and the pure rules (identifiers,
// timestamps, password policy, TOTP, update key lists, encryption envelopes).
//
// It imports only the standard library.
package attrcache

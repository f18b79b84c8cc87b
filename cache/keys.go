package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/attrcache/attrcache"
)

// The Redis key scheme, and the only place that knows it:
//
//	{prefix}{<user_id>}:u                        the user's Principal
//	{prefix}{<user_id>}:s:<session hash>         one of the user's sessions
//	{prefix}{<user_id>}:a:<name>                 one of the user's attributes
//	{prefix}{<user_id>}:sa:<session hash>:<name> one attribute of one of the user's sessions
//	{prefix}{<user_id>}:n                        the user's absent budget
//	{prefix}{throttle:<scope>:<digest>}          a failure counter (throttle.go)
//
// An attribute key may hold an "absent" marker: a read found nothing in the inner store. Markers
// expire after the absent TTL, and the absent budget bounds them by design: it counts the
// markers stored for the user (user and session attributes alike) and lives until the last of
// them expires; at Options.AbsentMax no more are stored (a read of another missing name goes to
// the inner store), so a user never has more than AbsentMax markers at once, however many
// missing names are asked for.
//
// The braces make the user id a Redis Cluster hash tag: every key of one user lives in one slot,
// so a multi-key command (MGET of a session and its principal, or of many attributes) or a
// pipeline over one user's keys reaches a single node. An attribute's raw name ends its key, so
// that an operator can find it with `redis-cli --scan`; names hold no control characters, and
// whatever else they hold comes after the tag and so cannot move it.
const (
	principalSuffix    = ":u"
	absentBudgetSuffix = ":n"
	sessionInfix       = ":s:"
	userAttrInfix      = ":a:"
	sessionAttrInfix   = ":sa:"
	sessionAttrSuffix  = ":"

	// failureTagStart starts the hash tag of every failure counter.
	failureTagStart = "throttle:"

	// loggedHashLen is how much of a session hash a log line may show.
	loggedHashLen = 8
)

// keyspace builds the keys under one prefix.
type keyspace struct{ prefix string }

// userTag returns the part every key of userID starts with.
func (ks keyspace) userTag(userID string) string {
	return ks.prefix + "{" + userID + "}"
}

// principal returns the key of userID's Principal.
func (ks keyspace) principal(userID string) string {
	return ks.userTag(userID) + principalSuffix
}

// absentBudget returns the key of userID's absent budget.
func (ks keyspace) absentBudget(userID string) string {
	return ks.userTag(userID) + absentBudgetSuffix
}

// session returns the key of the session hash of userID.
func (ks keyspace) session(userID string, hash attrcache.SessionHash) string {
	return ks.userTag(userID) + sessionInfix + string(hash)
}

// attrPrefix returns what the keys of scope's attributes start with; the name follows.
func (ks keyspace) attrPrefix(scope attrcache.AttrScope) string {
	if scope.IsSession() {
		return ks.userTag(scope.UserID) + sessionAttrInfix + string(scope.Session) + sessionAttrSuffix
	}
	return ks.userTag(scope.UserID) + userAttrInfix
}

// attr returns the key of the attribute key names.
func (ks keyspace) attr(key attrcache.AttrKey) string { return ks.attrPrefix(key.Scope) + key.Name }

// attrs returns the keys of scope's attributes called names, in the order of names.
func (ks keyspace) attrs(scope attrcache.AttrScope, names []string) []string {
	prefix := ks.attrPrefix(scope)
	keys := make([]string, len(names))
	for i, name := range names {
		keys[i] = prefix + name
	}
	return keys
}

// redact returns key as a log line may show it: a session hash is cut to its first few
// characters, so that logs never hold a whole one. A key of another prefix is shown as it is.
func (ks keyspace) redact(key string) string {
	rest, ok := strings.CutPrefix(key, ks.prefix+"{")
	if !ok {
		return key
	}
	// User ids hold no '}': the first one closes the tag.
	tagEnd := strings.IndexByte(rest, '}')
	if tagEnd < 0 {
		return key
	}
	head, kind := key[:len(key)-len(rest)+tagEnd+1], rest[tagEnd+1:]
	if hash, ok := strings.CutPrefix(kind, sessionInfix); ok {
		return head + sessionInfix + shortHash(hash)
	}
	if hashAndName, ok := strings.CutPrefix(kind, sessionAttrInfix); ok {
		hash, name, _ := strings.Cut(hashAndName, sessionAttrSuffix)
		return head + sessionAttrInfix + shortHash(hash) + sessionAttrSuffix + name
	}
	return key
}

// failures returns the key of the failure counter of name in scope. The name is hashed, so that
// neither its length nor its bytes reach the key, and the whole key is its own hash tag, so that
// counters spread over a Redis Cluster's slots; user ids start with "zusr", so no user's tag is
// "throttle:".
func (ks keyspace) failures(scope, name string) string {
	digest := sha256.Sum256([]byte(name))
	return ks.prefix + "{" + failureTagStart + scope + ":" + hex.EncodeToString(digest[:16]) + "}"
}

// shortHash returns the part of a session hash that a log line may show.
func shortHash(hash string) string {
	if len(hash) <= loggedHashLen {
		return hash
	}
	return hash[:loggedHashLen] + "…"
}

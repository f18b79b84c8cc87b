package cache

import (
	"strings"

	"github.com/attrcache/attrcache"
)

// The Redis key scheme, and the only place that knows it:
//
//	{prefix}{<user_id>}:u                the user's Principal
//	{prefix}{<user_id>}:s:<session hash>  one of the user's sessions
//
// The braces make the user id a Redis Cluster hash tag: every key of one user lives in one slot,
// so a multi-key command (MGET of a session and its principal) or a pipeline over one user's
// keys reaches a single node.
const (
	principalSuffix = ":u"
	sessionInfix    = ":s:"

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

// session returns the key of the session hash of userID.
func (ks keyspace) session(userID string, hash attrcache.SessionHash) string {
	return ks.userTag(userID) + sessionInfix + string(hash)
}

// redactKey returns key as a log line may show it: a session hash is cut to its first few
// characters, so that logs never hold a whole one.
func redactKey(key string) string {
	tagEnd := strings.LastIndexByte(key, '}')
	if tagEnd < 0 {
		return key
	}
	head, hash, ok := strings.Cut(key[tagEnd:], sessionInfix)
	if !ok || len(hash) <= loggedHashLen {
		return key
	}
	return key[:tagEnd] + head + sessionInfix + hash[:loggedHashLen] + "…"
}

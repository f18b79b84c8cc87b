package faults_test

import (
	"testing"

	"github.com/attrcache/attrcache/internal/faultproxy"
	"github.com/attrcache/attrcache/internal/stacktest"
	"github.com/attrcache/attrcache/persist"
	"time"
)

// The harness's names, as the scenarios use them.
type (
	user      = stacktest.User
	response  = stacktest.Response
	attrValue = stacktest.AttrValue
)

const requestTimeout = stacktest.RequestTimeout

// groupCommit is the group commit of the stack: that of configs/attrcache.yaml, so that a write
// is acknowledged only after the batch holding it committed.
var groupCommit = persist.GroupCommit{MaxRows: 256, MaxWait: time.Millisecond, Workers: 4}

// stack is one instance that reaches MySQL and Redis through a fault proxy each.
type stack struct {
	*stacktest.Stack
	mysqlProxy *faultproxy.Proxy
	redisProxy *faultproxy.Proxy
}

// newStack builds a stack over fresh proxies; t.Cleanup takes it down.
func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackWith(t, stacktest.Options{})
}

// newStackWith is newStack with opts, whose addresses and group commit it sets.
func newStackWith(t *testing.T, opts stacktest.Options) *stack {
	t.Helper()
	s := &stack{
		mysqlProxy: startProxy(t, env.MySQLAddr()),
		redisProxy: startProxy(t, env.RedisAddr),
	}
	opts.MySQLAddr, opts.RedisAddr, opts.GroupCommit = s.mysqlProxy.Addr(), s.redisProxy.Addr(), groupCommit
	s.Stack = env.NewStack(t, opts)
	return s
}

func startProxy(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Listen(target)
	if err != nil {
		t.Fatalf("starting a proxy to %s: %v", target, err)
	}
	t.Cleanup(func() { stacktest.CloseOrFail(t, "proxy", p) })
	return p
}

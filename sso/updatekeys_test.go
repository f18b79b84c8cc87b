package sso

import (
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// TestIsBoolUpdateKey checks each field's isBool against its setter: a key takes a bool exactly
// when IsBoolUpdateKey says so.
func TestIsBoolUpdateKey(t *testing.T) {
	for _, f := range updateFields {
		var upd attrcache.UserUpdate
		err := f.set(&upd, f.key, true, attrcache.NewUserID(), time.Now())
		if got, want := IsBoolUpdateKey(f.key), err == nil; got != want {
			t.Errorf("IsBoolUpdateKey(%q) = %v, want %v (its setter with true: %v)", f.key, got, want, err)
		}
	}
}

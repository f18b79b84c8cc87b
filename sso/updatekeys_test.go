package sso

import (
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// TestIsBoolUpdateKey checks IsBoolUpdateKey against setUpdateField: a key takes a bool exactly
// when IsBoolUpdateKey says so.
func TestIsBoolUpdateKey(t *testing.T) {
	for _, key := range UpdateKeys() {
		var upd attrcache.UserUpdate
		err := setUpdateField(&upd, key, true, attrcache.NewUserID(), time.Now())
		if got, want := IsBoolUpdateKey(key), err == nil; got != want {
			t.Errorf("IsBoolUpdateKey(%q) = %v, want %v (setUpdateField with true: %v)", key, got, want, err)
		}
	}
	if got, want := len(UpdateKeys()), len(regularUpdateKeys)+len(superUserUpdateKeys); got != want {
		t.Errorf("UpdateKeys has %d keys, want %d", got, want)
	}
}

package sso

import "context"

// DecideFromStores and DecideFromCache expose the two ways an attribute call gathers the facts
// of its caller's access, both decided by decideAttrCall, so that a test can require them to
// agree. DecideFromCache's gathered is false when the cache does not hold every fact.
func DecideFromStores(ctx context.Context, x *AttrAPI) error {
	_, err := decideAttrCall(x.gatherAttrFacts(ctx, x.api.now()))
	return err
}

func DecideFromCache(ctx context.Context, x *AttrAPI, names []string) (err error, gathered bool) {
	facts, _, ok := x.cachedAttrFacts(ctx, names, x.api.now())
	if !ok {
		return nil, false
	}
	_, err = decideAttrCall(facts)
	return err, true
}

//go:build soak

package soak_test

import (
	"context"
	"fmt"

	"github.com/attrcache/attrcache/internal/consistency"
)

// attrKey and storedAttr are the comparison's own (internal/consistency), shared with faults/.
type (
	attrKey    = consistency.Key
	storedAttr = consistency.Row
)

// mysqlAttrs returns every live attribute row of the soak database, read directly.
func mysqlAttrs(ctx context.Context) (map[attrKey]storedAttr, error) {
	return consistency.MySQL(ctx, env.MySQL)
}

// countRows returns how many attribute rows of the soak database match where.
func countRows(ctx context.Context, where string) (int, error) {
	var n int
	if err := env.MySQL.QueryRowContext(ctx, "SELECT COUNT(*) FROM sso_attr WHERE "+where).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting sso_attr rows: %w", err)
	}
	return n, nil
}

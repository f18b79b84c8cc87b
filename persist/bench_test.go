package persist

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// BenchmarkInsertAttrsStmt measures building, without executing, the statement that upserts the
// rows of a set of one attribute and of a set_many of a hundred, half of them with an expiration
// time (which the ON DUPLICATE KEY UPDATE clause lists).
func BenchmarkInsertAttrsStmt(b *testing.B) {
	scope := attrcache.AttrScope{UserID: attrcache.NewUserID()}
	now := attrcache.Now()
	expiresAt := now.Add(time.Hour)
	for _, n := range []int{1, 100} {
		items := make([]attrcache.AttrWrite, n)
		for i := range items {
			items[i] = attrcache.AttrWrite{Name: fmt.Sprintf("attribute-%03d", i), Value: `{"id": 1}`}
			if i%2 == 0 {
				items[i].ExpiresAt = &expiresAt
			}
		}
		rows := slices.SortedFunc(slices.Values(rowsOf(scope, items, now)), compareAttrRows)
		b.Run(fmt.Sprintf("%d_rows", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				insertAttrsStmt(rows, updateExisting)
			}
		})
	}
}

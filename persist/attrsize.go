package persist

// Statement size estimates, to keep a write within the largest packet the server accepts.
// Interpolated strings are quoted and escaped, which at worst doubles them.
const (
	// attrRowOverheadBytes bounds what a row adds to a statement besides its strings: three
	// quoted dates, a flag, a version, the placeholders' punctuation.
	attrRowOverheadBytes = 160
	// attrStmtOverheadBytes bounds the text of a write statement besides its rows.
	attrStmtOverheadBytes = 1024
)

// attrRowBytes bounds what row adds to a write statement. Its key may be there twice: in the row
// and in the ON DUPLICATE KEY UPDATE clause.
func attrRowBytes(row attrRow) int {
	return attrRowOverheadBytes + 2*len(row.item.Value) +
		4*(len(row.scope.UserID)+len(row.scope.Session)+len(row.item.Name))
}

// splitBySize cuts items, keeping their order, into runs whose sizes add up to at most limit; an
// item bigger than limit makes a run of its own.
func splitBySize[T any](items []T, limit int, size func(T) int) [][]T {
	var runs [][]T
	start, total := 0, 0
	for i, item := range items {
		n := size(item)
		if i > start && total+n > limit {
			runs = append(runs, items[start:i])
			start, total = i, 0
		}
		total += n
	}
	if start < len(items) {
		runs = append(runs, items[start:])
	}
	return runs
}

// oneTripStmtOverheadBytes bounds the text of a one-round-trip write besides its rows and keys.
const oneTripStmtOverheadBytes = 2 * attrStmtOverheadBytes

// oneTripKeyOverheadBytes bounds what a key adds to a condition of keysOfMany besides its
// strings, were it alone in its scope.
const oneTripKeyOverheadBytes = 96

// oneTripRowBytes bounds what row adds to a one-round-trip write: its part of the upsert, its key
// in the log's condition and in the log's cid note (with its cid), its user in the version
// floor's list, quoted and escaped.
func oneTripRowBytes(row attrRow) int {
	return attrRowBytes(row) +
		2*(oneTripKeyOverheadBytes+2*(len(row.scope.UserID)+len(row.scope.Session)+len(row.item.Name))) +
		2*len(row.cid)
}

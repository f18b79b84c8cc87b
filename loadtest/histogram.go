package loadtest

import (
	"math"
	"math/bits"
	"time"
)

// The histogram's buckets are log-linear (as in HdrHistogram): values below subBucketCount
// nanoseconds each have a bucket of their own; above, every power of two is split into
// subBucketCount/2 equal buckets, so a bucket is never wider than 1/64 of the values it holds
// and a reported percentile is within about 1.6 % of the true one.
const (
	subBucketBits  = 7
	subBucketCount = 1 << subBucketBits
	subBucketHalf  = subBucketCount / 2
	// bucketCount covers every non-negative int64: the largest shift is 63-subBucketBits.
	bucketCount = subBucketCount + (63-subBucketBits)*subBucketHalf
)

// Histogram records durations in a fixed amount of memory (about 30 KiB) however many it
// records. The zero Histogram is empty and ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts [bucketCount]uint64
	count  uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

// Record adds one duration; a negative one counts as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	if h.count == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.count++
	h.sum += d
}

// Merge adds every duration other recorded.
func (h *Histogram) Merge(other *Histogram) {
	if other.count == 0 {
		return
	}
	for i, c := range other.counts {
		h.counts[i] += c
	}
	if h.count == 0 || other.min < h.min {
		h.min = other.min
	}
	h.max = max(h.max, other.max)
	h.count += other.count
	h.sum += other.sum
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.count }

// Max returns the largest duration recorded, exactly; 0 when none was.
func (h *Histogram) Max() time.Duration { return h.max }

// Min returns the smallest duration recorded, exactly; 0 when none was.
func (h *Histogram) Min() time.Duration { return h.min }

// Mean returns the average duration recorded; 0 when none was.
func (h *Histogram) Mean() time.Duration {
	if h.count == 0 {
		return 0
	}
	return h.sum / time.Duration(h.count)
}

// Quantile returns the duration at or below which the fraction q (0 < q ≤ 1) of the recorded
// durations fall: the upper edge of the bucket holding the value of that rank, never more than
// Max. It returns 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	rank = min(max(rank, 1), h.count)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketUpperEdge(i)), h.max)
		}
	}
	return h.max
}

// bucketOf returns the index of the bucket that holds v.
func bucketOf(v uint64) int {
	if v < subBucketCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBucketBits // ≥ 1
	top := v >> shift                      // in [subBucketHalf, subBucketCount)
	return subBucketCount + (shift-1)*subBucketHalf + int(top-subBucketHalf)
}

// bucketUpperEdge returns the largest value bucket i holds.
func bucketUpperEdge(i int) uint64 {
	if i < subBucketCount {
		return uint64(i)
	}
	shift := (i-subBucketCount)/subBucketHalf + 1
	top := uint64((i-subBucketCount)%subBucketHalf + subBucketHalf)
	return (top+1)<<shift - 1
}

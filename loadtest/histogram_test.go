package loadtest

import (
	"math"
	"testing"
	"time"
)

// maxRelativeError is how far a reported percentile may be above the exact one: one bucket.
const maxRelativeError = 1.0 / subBucketHalf

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 5000 * time.Microsecond},
		{0.90, 9000 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond},
		{1, 10000 * time.Microsecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if got < tt.want || float64(got-tt.want) > maxRelativeError*float64(tt.want) {
			t.Errorf("Quantile(%g) = %v, want %v or at most %.1f%% above", tt.q, got, tt.want, 100*maxRelativeError)
		}
	}
	if got, want := h.Max(), 10000*time.Microsecond; got != want {
		t.Errorf("Max() = %v, want %v", got, want)
	}
	if got, want := h.Min(), time.Microsecond; got != want {
		t.Errorf("Min() = %v, want %v", got, want)
	}
	if got, want := h.Mean(), 5000500*time.Nanosecond; got != want {
		t.Errorf("Mean() = %v, want %v", got, want)
	}
}

func TestHistogramEdgeCases(t *testing.T) {
	tests := []struct {
		name     string
		values   []time.Duration
		q        float64
		want     time.Duration
		wantSize uint64
	}{
		{"empty", nil, 0.99, 0, 0},
		{"one value is exact", []time.Duration{1234567 * time.Nanosecond}, 0.5, 1234567 * time.Nanosecond, 1},
		{"small values are exact", []time.Duration{3, 5, 7, 9}, 0.5, 5, 4},
		{"negative counts as zero", []time.Duration{-time.Second}, 1, 0, 1},
		{"an hour still fits", []time.Duration{time.Hour}, 0.999, time.Hour, 1},
		{"the largest duration fits", []time.Duration{math.MaxInt64}, 1, math.MaxInt64, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Errorf("Quantile(%g) = %v, want %v", tt.q, got, tt.want)
			}
			if got := h.Count(); got != tt.wantSize {
				t.Errorf("Count() = %d, want %d", got, tt.wantSize)
			}
		})
	}
}

func TestHistogramBucketsHoldTheirValues(t *testing.T) {
	for v := uint64(1); v < math.MaxInt64/3; v = v*3 + 1 {
		for _, x := range []uint64{v - 1, v, v + 1} {
			i := bucketOf(x)
			upper := bucketUpperEdge(i)
			lower := uint64(0)
			if i > 0 {
				lower = bucketUpperEdge(i-1) + 1
			}
			if x < lower || x > upper {
				t.Fatalf("bucket %d of %d spans [%d, %d], which leaves the value out", i, x, lower, upper)
			}
			if width := upper - lower; float64(width) > maxRelativeError*float64(lower) && width > 0 {
				t.Fatalf("bucket %d spans [%d, %d]: wider than %.1f%% of its values", i, lower, upper, 100*maxRelativeError)
			}
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, want Histogram
	for i := range 1000 {
		d := time.Duration(i*i) * time.Microsecond
		want.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var merged Histogram
	merged.Merge(&a)
	merged.Merge(&b)
	merged.Merge(&Histogram{})
	if merged != want {
		t.Errorf("merging two halves: count %d, min %v, max %v, p99 %v; want count %d, min %v, max %v, p99 %v",
			merged.Count(), merged.Min(), merged.Max(), merged.Quantile(0.99),
			want.Count(), want.Min(), want.Max(), want.Quantile(0.99))
	}
}

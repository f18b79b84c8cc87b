package metricstest

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestParseSamplesReadsWhatSamplesGathers checks that both functions key a series the same way,
// so that a test may compare what a registry holds with what GET /metrics serves.
func TestParseSamplesReadsWhatSamplesGathers(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	counter := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_events_total", Help: "Events."}, []string{"route", "kind"})
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_level", Help: "Level."})
	histogram := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test_duration_seconds", Help: "Durations."})
	reg.MustRegister(counter, gauge, histogram)
	counter.WithLabelValues(`/a/"quoted"\path`, "x").Add(3)
	gauge.Set(-2.5)
	histogram.Observe(0.5)

	gathered, err := Samples(reg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`test_events_total{kind="x",route="/a/\"quoted\"\\path"}`: 3,
		`test_level`:                  -2.5,
		`test_duration_seconds_count`: 1,
		`test_duration_seconds_sum`:   0.5,
	}
	if !maps.Equal(gathered, want) {
		t.Errorf("Samples:\n got %v\nwant %v", gathered, want)
	}

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	text, err := io.ReadAll(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseSamples(string(text))
	if err != nil {
		t.Fatalf("ParseSamples: %v\n%s", err, text)
	}
	for series, value := range gathered {
		if got, ok := parsed[series]; !ok || got != value {
			t.Errorf("ParseSamples[%s] = %v (present %v), want %v\n%s", series, got, ok, value, text)
		}
	}
}

func TestParseSamplesRejectsMalformedLines(t *testing.T) {
	tests := []struct{ name, text string }{
		{"no value", "test_level\n"},
		{"a value that is no number", "test_level high\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := ParseSamples(tt.text); err == nil {
				t.Errorf("ParseSamples(%q) = %v, want an error", tt.text, got)
			}
		})
	}
}

package metrics

import "github.com/prometheus/client_golang/prometheus"

// newSealedValues creates the gauge of stored values per sealing key id and registers it on reg.
func newSealedValues(reg prometheus.Registerer) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "sealed_values",
		Help:      "Stored values sealed with each key id when last counted, by kind (attr_value, email, totp_key); a key id that is not configured has configured=\"false\".",
	}, []string{"key_id", "kind", "configured"})
	reg.MustRegister(g)
	return g
}

// SealedCount is how many stored values of one kind one key id seals.
type SealedCount struct {
	KeyID      string
	Kind       string
	Configured bool
	Count      int64
}

// SetSealedValues replaces every series of attrcache_sealed_values with counts.
func (m *Metrics) SetSealedValues(counts []SealedCount) {
	if m == nil {
		return
	}
	m.sealedValues.Reset()
	for _, c := range counts {
		configured := "false"
		if c.Configured {
			configured = "true"
		}
		m.sealedValues.WithLabelValues(c.KeyID, c.Kind, configured).Set(float64(c.Count))
	}
}

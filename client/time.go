package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Time is a timestamp of an answer: Zato's naive UTC ISO 8601 form ("2006-01-02T15:04:05" with
// microseconds when they are not zero), as a UTC time.Time. JSON null is the zero time.
type Time struct{ time.Time }

// Never is the expiration_time of what never expires (9999-12-31T00:00:00).
var Never = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// IsNever reports whether t is [Never].
func (t Time) IsNever() bool { return t.Equal(Never) }

// UnmarshalJSON reads a Zato timestamp, or null.
func (t *Time) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("a timestamp: %w", err)
	}
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	parsed, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		if parsed, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("timestamp %q: %w", s, err)
		}
	}
	t.Time = parsed.UTC()
	return nil
}

// MarshalJSON writes t in Zato's form.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(formatTime(t.Time))
}

func formatTime(t time.Time) string {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05")
	}
	return t.Format("2006-01-02T15:04:05.000000")
}

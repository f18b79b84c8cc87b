package attrcache

import (
	"errors"
	"strings"
	"time"
)

// NeverExpires is the expiration time of what never expires: Zato's datetime(9999, 12, 31).
var NeverExpires = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// FormatTime renders t as Python's naive-UTC isoformat(): YYYY-MM-DDTHH:MM:SS, with .ffffff when
// the microseconds are not zero. Precision below a microsecond is dropped.
func FormatTime(t time.Time) string {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02T15:04:05")
	}
	return t.Format("2006-01-02T15:04:05.000000")
}

// Now is the current time as stored: UTC, to the microsecond (DATETIME(6)).
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02",
}

// ParseTime reads a timestamp as clients send them (ISO 8601 with or without a zone, a space or a
// T between date and time, or a date alone). A time without a zone is UTC. A time whose UTC year
// is outside 1 to 9999 is refused: FormatTime could not write it and MySQL could not store it.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC().Truncate(time.Microsecond)
			if t.Year() < 1 || t.Year() > 9999 {
				return time.Time{}, errors.New("the date is outside the years 1 to 9999")
			}
			return t, nil
		}
	}
	return time.Time{}, errors.New("not a date and time in ISO 8601 form")
}

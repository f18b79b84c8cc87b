//go:build !linux

package loadtest

import "time"

// threadSleep sleeps for d. Elsewhere than on Linux it is time.Sleep, with the precision of the
// runtime's timers there.
func threadSleep(d time.Duration) { time.Sleep(d) }

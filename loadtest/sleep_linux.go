package loadtest

import (
	"syscall"
	"time"
)

// threadSleep blocks the calling thread for d in nanosleep(2), which wakes within the kernel's
// timer slack (50 µs by default) rather than on the next millisecond. A signal (the Go runtime
// sends some) interrupts it; it then sleeps for what is left.
func threadSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

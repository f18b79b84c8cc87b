package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/attrcache/attrcache/sso"
)

// auditBufferBytes is how much of the audit log may wait for the sink before lines are dropped
// (and counted): some 20,000 lines, seconds of the busiest load, for a sink that stalls.
const auditBufferBytes = 4 << 20

// openAuditLog returns the audit log on the sink cfg names: stderr, the log's writer (each line
// written whole, so lines of the two never mix), or a file opened for appending, created with
// mode 0600 when missing; with none, a nil audit log. closeSink writes out what is queued and
// closes the file.
func openAuditLog(cfg auditConfig, stderr io.Writer) (audit *sso.AuditLog, closeSink func() error, err error) {
	switch cfg.Sink {
	case auditNone:
		return nil, func() error { return nil }, nil
	case auditStderr:
		audit = sso.NewAuditLog(stderr, auditBufferBytes)
		return audit, audit.Close, nil
	}
	f, err := os.OpenFile(cfg.Sink, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit.sink: %w", err)
	}
	audit = sso.NewAuditLog(f, auditBufferBytes)
	return audit, func() error { return errors.Join(audit.Close(), f.Close()) }, nil
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/attrcache/attrcache/sso"
)

// auditQueueLines is how many audit lines may wait for the sink before more are dropped (and
// counted): a few seconds of the busiest load a sink that stalls can absorb.
const auditQueueLines = 1 << 16

// openAuditLog returns the audit log on the sink cfg names: stderr, the log's writer (each line
// written whole, so lines of the two never mix), or a file opened for appending, created with
// mode 0600 when missing. closeSink writes out what is queued and closes the file.
func openAuditLog(cfg auditConfig, stderr io.Writer) (audit *sso.AuditLog, closeSink func() error, err error) {
	if cfg.Sink == auditStderr {
		audit = sso.NewAuditLog(stderr, auditQueueLines)
		return audit, audit.Close, nil
	}
	f, err := os.OpenFile(cfg.Sink, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit.sink: %w", err)
	}
	audit = sso.NewAuditLog(f, auditQueueLines)
	return audit, func() error { return errors.Join(audit.Close(), f.Close()) }, nil
}

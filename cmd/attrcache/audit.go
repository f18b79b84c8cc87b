package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/attrcache/attrcache"
	"github.com/attrcache/attrcache/sso"
)

// auditBufferBytes is how much of the audit log may wait for the sink before lines are dropped
// (and counted): some 20,000 lines, seconds of the busiest load, for a sink that stalls.
const auditBufferBytes = 4 << 20

// openAuditLog returns serve's audit log on the sink cfg names: stderr, the log's writer (each
// line written whole, so lines of the two never mix), or a file opened for appending, created
// with mode 0600 when missing; with none, a nil audit log. closeSink writes out what is queued
// and closes the file.
func openAuditLog(cfg auditConfig, stderr io.Writer) (audit *sso.AuditLog, closeSink func() error, err error) {
	if cfg.Sink == auditNone {
		return nil, func() error { return nil }, nil
	}
	w, closeFile, err := openAuditSink(cfg, stderr)
	if err != nil {
		return nil, nil, err
	}
	audit = sso.NewAuditLog(w, auditBufferBytes)
	return audit, func() error { return errors.Join(audit.Close(), closeFile()) }, nil
}

// openCLIAudit returns the audit log of a command other than serve, on the same sink: each line
// is written when its call is done. closeSink closes the file and returns the first failed
// write, so that a command whose audit line was lost fails. With none, a nil audit log.
func openCLIAudit(cfg auditConfig, stderr io.Writer) (audit *sso.AuditWriter, closeSink func() error, err error) {
	if cfg.Sink == auditNone {
		return nil, func() error { return nil }, nil
	}
	w, closeFile, err := openAuditSink(cfg, stderr)
	if err != nil {
		return nil, nil, err
	}
	audit = sso.NewAuditWriter(w)
	return audit, func() error {
		var errs []error
		if err := audit.Err(); err != nil {
			errs = append(errs, fmt.Errorf("audit.sink: writing: %w", err))
		}
		return errors.Join(append(errs, closeFile())...)
	}, nil
}

// openAuditSink returns the writer of the sink cfg names: stderr, or a file opened for
// appending, created with mode 0600 when missing, which closeFile closes.
func openAuditSink(cfg auditConfig, stderr io.Writer) (w io.Writer, closeFile func() error, err error) {
	if cfg.Sink == auditStderr {
		return stderr, func() error { return nil }, nil
	}
	f, err := os.OpenFile(cfg.Sink, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit.sink: %w", err)
	}
	return f, f.Close, nil
}

// recordCommand records on audit (nil: nowhere) the entry of a command that reads or changes
// users' data other than through the Go API: operation op, begun at start, on target's data
// ("": every user's), by the command line (sso.AdminRemoteAddr, no actor), ending with err.
func recordCommand(ctx context.Context, audit sso.Auditor, op, target string, start time.Time, err error) {
	if audit == nil {
		return
	}
	outcome := sso.OutcomeOK
	if err != nil {
		outcome = attrcache.CodeOf(err)
	}
	audit.Record(ctx, sso.AuditEntry{Time: start.UTC(), Target: target, Operation: op,
		RemoteAddr: sso.AdminRemoteAddr, Outcome: outcome})
}

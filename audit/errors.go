package audit

import "errors"

// ErrUnavailable means the audit trail cannot accept a record now (the spool
// is full in fail-closed mode, or the logger is closed).
var ErrUnavailable = errors.New("guard: audit trail unavailable")

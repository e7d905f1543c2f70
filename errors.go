package guard

import (
	"errors"
	"fmt"

	"github.com/guardedsql/guard/audit"
)

// ErrDenied is matched by every error that stops a statement on policy
// grounds: errors.Is(err, guard.ErrDenied).
var ErrDenied = errors.New("guard: statement denied")

// ErrAuditUnavailable is returned, in fail-closed audit mode, for a statement
// that was refused because its audit record could not be accepted.
// It is the same value as audit.ErrUnavailable.
var ErrAuditUnavailable = audit.ErrUnavailable

// ErrConfig is matched by every configuration error (a bad Option, DSN
// parameter or environment variable).
var ErrConfig = errors.New("guard: invalid configuration")

// DeniedError says why a statement was stopped before it reached the database.
// It matches ErrDenied with errors.Is, and never driver.ErrBadConn, so
// database/sql does not retry a denied statement.
type DeniedError struct {
	// Rule is the policy rule that decided ("" for the policy's default).
	Rule string
	// Message is the rule's explanation.
	Message string
	// Fingerprint identifies the statement's shape (literals folded).
	Fingerprint string
	// Effect is the decision's effect: "deny", or "require_approval" when the
	// approval was rejected, expired or could not be asked for.
	Effect string
	// ApprovalID and Reviewer are set when a reviewer rejected the statement.
	ApprovalID string
	Reviewer   string
	// Cause is the underlying error of a failed approval, if any.
	Cause error
}

// Error describes the denial.
func (e *DeniedError) Error() string {
	msg := "guard: statement denied"
	if e.Rule != "" {
		msg += fmt.Sprintf(" by rule %q", e.Rule)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Reviewer != "" {
		msg += " (reviewer " + e.Reviewer + ")"
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrDenied) true.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

// Unwrap returns the approval failure, if any.
func (e *DeniedError) Unwrap() error { return e.Cause }

// ConfigError names the setting that has a bad value.
type ConfigError struct {
	// Setting is the setting's name, e.g. "guard.mode" or "GUARD_MODE".
	Setting string
	Value   string
	Err     error
}

// Error names the setting and what is wrong with it.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("guard: setting %s=%q: %v", e.Setting, e.Value, e.Err)
}

// Is makes errors.Is(err, ErrConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrConfig }

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

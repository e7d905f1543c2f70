package policy

import (
	"time"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// Effect is what a rule, or a whole decision, does with a statement.
type Effect string

// Effects in increasing order of restriction: deny wins over require_approval,
// which wins over audit and allow.
const (
	Allow           Effect = "allow"
	Audit           Effect = "audit"
	RequireApproval Effect = "require_approval"
	Deny            Effect = "deny"
)

// Rank orders effects by restriction; unknown effects rank as Deny.
func (e Effect) Rank() int {
	switch e {
	case Allow:
		return 0
	case Audit:
		return 1
	case RequireApproval:
		return 2
	}
	return 3
}

// RequestKind says how a statement reached the driver.
type RequestKind string

// Request kinds.
const (
	KindQuery   RequestKind = "query"
	KindExec    RequestKind = "exec"
	KindPrepare RequestKind = "prepare"
)

// Request describes how a statement is being run.
type Request struct {
	Kind          RequestKind
	InTransaction bool
	Database      string
	Driver        string
}

// Input is everything a decision is made from.
type Input struct {
	Identity identity.Identity
	Analysis *sqlinfo.Analysis
	Request  Request
	// Now is the decision time; zero means time.Now().
	Now time.Time
}

// Decision is the outcome of evaluating a policy for one statement.
type Decision struct {
	Effect Effect
	// Rule names the rule that decided, empty for the default effect.
	Rule string
	// Message explains the decision to the caller and the auditor.
	Message string
	// Policy identifies the policy version that decided.
	Policy string
	// Observed is true when the policy is in observe-only mode and Effect is
	// what would have happened; the statement is let through.
	Observed bool
}

// Blocks reports whether the decision stops the statement outright.
func (d Decision) Blocks() bool { return d.Effect == Deny && !d.Observed }

// NeedsApproval reports whether the statement must be held for a reviewer.
func (d Decision) NeedsApproval() bool { return d.Effect == RequireApproval && !d.Observed }

package approval

import (
	"context"
	"time"

	"github.com/guardedsql/guard/identity"
)

// Request is a statement waiting for a reviewer.
type Request struct {
	// ID identifies the request, and is recorded in the audit trail.
	ID        string
	Identity  identity.Identity
	Query     string
	Rule      string
	Message   string
	Requested time.Time
}

// Result is a reviewer's answer.
type Result struct {
	Approved bool
	Reviewer string
	Reason   string
}

// Approver holds a statement until a reviewer decides, the request expires or
// ctx is done. An error (including ctx's) means the statement does not run.
type Approver interface {
	Approve(ctx context.Context, req Request) (Result, error)
}

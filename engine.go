package guard

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
	"github.com/guardedsql/guard/mask"
	"github.com/guardedsql/guard/policy"
	"github.com/guardedsql/guard/policy/approval"
)

// engine runs the per-statement pipeline of DESIGN.md section 3 for one
// connector. It is immutable after build and shared by all its connections.
type engine struct {
	cfg       config
	admitter  interface{ Admit(context.Context) error }
	closers   []func(context.Context) error
	store     *policy.Store // set when the policy comes from a file
	approvals atomic.Uint64
}

// allowAll is the pass-through policy used when policy evaluation is off.
type allowAll struct{}

func (allowAll) Decide(context.Context, *policy.Input) policy.Decision {
	return policy.Decision{Effect: policy.Allow}
}

func newEngine(c config) (*engine, error) {
	switch c.dialect {
	case sqlinfo.Postgres, sqlinfo.MySQL, sqlinfo.SQLite:
	default:
		return nil, &ConfigError{Setting: "dialect", Value: string(c.dialect), Err: fmt.Errorf("want postgres, mysql or sqlite")}
	}
	if c.errorLog == nil {
		c.errorLog = func(error) {}
	}
	// errorLog is set before anything that may call it from its own
	// goroutine (the audit logger reports a broker that is down at once).
	e := &engine{cfg: c}
	if err := e.buildPolicy(); err != nil {
		return nil, err
	}
	if err := e.buildMasker(); err != nil {
		return nil, err
	}
	if err := e.buildAuditor(); err != nil {
		return nil, err
	}
	if a, ok := e.cfg.auditor.(interface{ Admit(context.Context) error }); ok {
		e.admitter = a
	}
	if err := e.startPolicyWatch(); err != nil {
		_ = e.close(context.Background())
		return nil, &ConfigError{Setting: "guard.policy_watch", Value: "on", Err: err}
	}
	return e, nil
}

func (e *engine) close(ctx context.Context) error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i](ctx))
	}
	return errors.Join(errs...)
}

// call is one statement attempt travelling through the pipeline.
type call struct {
	e        *engine
	id       identity.Identity
	query    string
	an       *sqlinfo.Analysis
	kind     policy.RequestKind
	inTx     bool
	dec      policy.Decision
	approval approval.Result
	apprID   string
	start    time.Time
	rows     atomic.Int64
	masked   []mask.ColumnStat
	maskMu   sync.Mutex
	ended    atomic.Bool
}

func (e *engine) analyze(query string) *sqlinfo.Analysis {
	return sqlinfo.Analyze(e.cfg.dialect, query)
}

// begin decides a statement. A nil error means it may run; the caller must
// then end the call exactly once.
func (e *engine) begin(ctx context.Context, query string, an *sqlinfo.Analysis, kind policy.RequestKind, inTx bool) (*call, error) {
	c := &call{e: e, query: query, kind: kind, inTx: inTx, start: time.Now()}
	c.id = identity.FromOrAnonymous(ctx)
	if an == nil {
		an = e.analyze(query)
	}
	c.an = an
	c.dec = e.cfg.policy.Decide(ctx, &policy.Input{
		Identity: c.id,
		Analysis: an,
		Request:  policy.Request{Kind: kind, InTransaction: inTx, Database: e.cfg.database, Driver: e.cfg.driverName},
		Now:      c.start,
	})
	if e.cfg.observe && c.dec.Effect != policy.Allow && c.dec.Effect != policy.Audit {
		c.dec.Observed = true
	}
	if c.dec.Blocks() {
		return nil, c.refuse(ctx, nil)
	}
	if c.dec.NeedsApproval() {
		if err := c.askApproval(ctx); err != nil {
			return nil, err
		}
	}
	if e.admitter != nil {
		if err := e.admitter.Admit(ctx); err != nil {
			if !errors.Is(err, audit.ErrUnavailable) {
				err = fmt.Errorf("%w: %w", ErrAuditUnavailable, err)
			}
			return nil, err
		}
	}
	return c, nil
}

func (c *call) askApproval(ctx context.Context) error {
	if c.e.cfg.approver == nil {
		return c.refuse(ctx, errors.New("the statement needs approval and no approver is configured"))
	}
	c.apprID = fmt.Sprintf("%d-%d", c.start.UnixNano(), c.e.approvals.Add(1))
	res, err := c.e.cfg.approver.Approve(ctx, approval.Request{
		ID: c.apprID, Identity: c.id, Query: c.query, Rule: c.dec.Rule, Message: c.dec.Message, Requested: c.start,
	})
	c.approval = res
	if err != nil {
		return c.refuse(ctx, fmt.Errorf("approval %s: %w", c.apprID, err))
	}
	if !res.Approved {
		reason := "rejected"
		if res.Reason != "" {
			reason += ": " + res.Reason
		}
		return c.refuse(ctx, errors.New(reason))
	}
	return nil
}

// refuse records a statement that will not run and returns the caller's error.
func (c *call) refuse(ctx context.Context, cause error) error {
	de := &DeniedError{
		Rule: c.dec.Rule, Message: c.dec.Message, Fingerprint: c.an.Fingerprint,
		Effect: string(c.dec.Effect), ApprovalID: c.apprID, Reviewer: c.approval.Reviewer, Cause: cause,
	}
	if a := c.e.admitter; a != nil {
		// In fail-closed mode a full spool refuses new records; the denial
		// then says so instead of waiting for room that may never come.
		if err := a.Admit(ctx); err != nil {
			c.ended.Store(true)
			if de.Cause == nil {
				de.Cause = err
			} else {
				de.Cause = errors.Join(de.Cause, err)
			}
			return de
		}
	}
	c.endWith(ctx, &audit.Outcome{Status: "denied", Error: de.Error()}, 0)
	return de
}

// endExec records the outcome of an Exec.
func (c *call) endExec(ctx context.Context, res driver.Result, err error) {
	var affected int64
	if err == nil && res != nil {
		if n, rerr := res.RowsAffected(); rerr == nil {
			affected = n
		}
	}
	c.endWith(ctx, outcomeOf(err), affected)
}

func outcomeOf(err error) *audit.Outcome {
	if err == nil {
		return &audit.Outcome{Status: "ok"}
	}
	o := &audit.Outcome{Status: "error", Error: err.Error()}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		o.Status = "cancelled"
	}
	var sc interface{ SQLState() string }
	if errors.As(err, &sc) {
		o.SQLState = sc.SQLState()
	}
	return o
}

func (c *call) addMasked(stats []mask.ColumnStat) {
	if len(stats) == 0 {
		return
	}
	c.maskMu.Lock()
	c.masked = append(c.masked, stats...)
	c.maskMu.Unlock()
}

// endWith emits the statement's one audit record. Later calls do nothing.
func (c *call) endWith(ctx context.Context, out *audit.Outcome, affected int64) {
	if !c.ended.CompareAndSwap(false, true) {
		return
	}
	out.RowsAffected = affected
	out.RowsReturned = c.rows.Load()
	rec := &audit.Record{
		Kind:        audit.KindStatement,
		Time:        c.start,
		Duration:    time.Since(c.start),
		Session:     c.id.Session,
		Database:    c.e.cfg.database,
		Driver:      c.e.cfg.driverName,
		Request:     string(c.kind),
		InTx:        c.inTx,
		Statement:   c.query,
		Fingerprint: c.an.Fingerprint,
		Command:     c.an.Command(),
		Effect:      string(c.an.Effect()),
		Objects:     c.an.Objects(),
		Outcome:     out,
		Decision: &audit.Decision{
			Effect: string(c.dec.Effect), Rule: c.dec.Rule, Message: c.dec.Message, Policy: c.dec.Policy,
			Observed: c.dec.Observed, ApprovalID: c.apprID, Reviewer: c.approval.Reviewer,
		},
	}
	chain := c.id.Chain()
	rec.Identity = principal(chain[0])
	for _, p := range chain[1:] {
		rec.OnBehalfOf = append(rec.OnBehalfOf, *principal(p))
	}
	for i := range c.an.Statements {
		for _, d := range c.an.Statements[i].Dangers {
			rec.Dangers = appendUnique(rec.Dangers, string(d))
		}
	}
	c.maskMu.Lock()
	for _, m := range c.masked {
		rec.Masked = append(rec.Masked, audit.MaskedColumn{Column: m.Column, Class: m.Class, Rule: m.Rule, Strategy: m.Strategy, Cells: m.Cells})
	}
	c.maskMu.Unlock()
	// A cancelled statement is still recorded: the record must not die with ctx.
	if err := c.e.cfg.auditor.Emit(context.WithoutCancel(ctx), rec); err != nil {
		c.e.cfg.errorLog(fmt.Errorf("guard: audit record for %q: %w", truncate(c.query, 80), err))
	}
}

// emitTCL records a transaction boundary; transactions are not policy-checked.
func (e *engine) emitTCL(ctx context.Context, command string, err error) {
	// The analyzer reads BEGIN/COMMIT/ROLLBACK as TCL in every dialect and
	// caches them, so the record carries the same facts a typed one would.
	c := &call{e: e, query: command, kind: policy.KindExec, start: time.Now(), id: identity.FromOrAnonymous(ctx),
		an: e.analyze(command), dec: policy.Decision{Effect: policy.Allow}, inTx: true}
	c.endWith(ctx, outcomeOf(err), 0)
}

func principal(id identity.Identity) *audit.Principal {
	return &audit.Principal{Subject: id.Subject, Kind: string(id.Kind), Roles: id.Roles, Attributes: id.Attributes}
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimSpace(s[:n]) + "..."
}

// planFor builds the masking plan for result set n of a call, or nil.
func (c *call) planFor(ctx context.Context, n int, rows driver.Rows) mask.Plan {
	m := c.e.cfg.masker
	if m == nil {
		return nil
	}
	cols := rows.Columns()
	rs := mask.ResultSet{Identity: c.id, Statement: statementForResultSet(c.an, n), Columns: cols}
	if tn, ok := rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		rs.DatabaseTypes = make([]string, len(cols))
		for i := range cols {
			rs.DatabaseTypes[i] = tn.ColumnTypeDatabaseTypeName(i)
		}
	}
	return m.Plan(ctx, rs)
}

// statementForResultSet maps the n-th result set to the statement that
// produced it: the n-th statement that returns rows.
func statementForResultSet(an *sqlinfo.Analysis, n int) *sqlinfo.Statement {
	if an == nil {
		return nil
	}
	if len(an.Statements) == 1 {
		return &an.Statements[0]
	}
	k := 0
	for i := range an.Statements {
		s := &an.Statements[i]
		if len(s.Columns) == 0 && s.Effect != sqlinfo.Read {
			continue
		}
		if k == n {
			return s
		}
		k++
	}
	return nil
}

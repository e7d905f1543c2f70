package guard

import (
	"context"
	"database/sql/driver"
	"strings"

	"github.com/guardedsql/guard/internal/sqlinfo"
	"github.com/guardedsql/guard/policy"
)

// stmt is a guarded prepared statement. Each execution is decided with the
// identity of the context it executes with (DESIGN.md pitfall 7).
type stmt struct {
	c     *conn
	inner driver.Stmt
	query string
	an    *sqlinfo.Analysis
	// carried is the decision of an ExecContext/QueryContext that fell back
	// to Prepare + Exec after ErrSkip: it is used, once, instead of a new one.
	carried *call
	// copyIn marks lib/pq's COPY FROM STDIN: one statement made of many row
	// Execs and a final Exec without arguments; it is decided and recorded once.
	copyIn bool
	copy   *call
}

var (
	_ driver.Stmt              = (*stmt)(nil)
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
	_ driver.ColumnConverter   = (*stmt)(nil) //nolint:staticcheck
)

func isCopyFromStdin(an *sqlinfo.Analysis, query string) bool {
	if len(an.Statements) == 1 && an.Statements[0].Command != "" && an.Statements[0].Command != "COPY" {
		return false
	}
	q := strings.ToUpper(query)
	return strings.HasPrefix(strings.TrimSpace(q), "COPY") && strings.Contains(q, "FROM STDIN")
}

// Close closes the wrapped statement; an unfinished COPY is recorded.
func (s *stmt) Close() error {
	err := s.inner.Close()
	if s.copy != nil {
		s.copy.endExec(context.Background(), nil, err)
		s.copy = nil
	}
	if s.carried != nil {
		s.carried.endWith(context.Background(), outcomeOf(driver.ErrSkip), 0)
		s.carried = nil
	}
	return err
}

// NumInput passes through.
func (s *stmt) NumInput() int { return s.inner.NumInput() }

// Exec is the legacy form of ExecContext.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) { //nolint:staticcheck
	return s.ExecContext(context.Background(), valuesToNamed(args))
}

// Query is the legacy form of QueryContext.
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) { //nolint:staticcheck
	return s.QueryContext(context.Background(), valuesToNamed(args))
}

func (s *stmt) decide(ctx context.Context, kind policy.RequestKind) (*call, error) {
	if cl := s.carried; cl != nil {
		s.carried = nil
		return cl, nil
	}
	return s.c.e.begin(ctx, s.query, s.an, kind, s.c.inTx)
}

// ExecContext decides this execution, runs it, and records it.
func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.copyIn {
		return s.execCopy(ctx, args)
	}
	cl, err := s.decide(ctx, policy.KindExec)
	if err != nil {
		return nil, err
	}
	res, err := s.execInner(ctx, args)
	cl.endExec(ctx, res, err)
	return res, err
}

// execCopy runs one row of a COPY FROM STDIN, decided at Prepare, and
// records the statement when the final, argument-less Exec returns the row
// count (or a row fails).
func (s *stmt) execCopy(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.copy == nil {
		// The COPY already ended (failed or flushed); let the driver answer.
		return s.execInner(ctx, args)
	}
	res, err := s.execInner(ctx, args)
	if err != nil || len(args) == 0 {
		s.copy.endExec(ctx, res, err)
		s.copy = nil
	}
	return res, err
}

func (s *stmt) execInner(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if ec, ok := s.inner.(driver.StmtExecContext); ok {
		return ec.ExecContext(ctx, args)
	}
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
	}
	return s.inner.Exec(vals) //nolint:staticcheck
}

// QueryContext decides this execution, runs it, and returns masking rows.
func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	cl, err := s.decide(ctx, policy.KindQuery)
	if err != nil {
		return nil, err
	}
	var rows driver.Rows
	if qc, ok := s.inner.(driver.StmtQueryContext); ok {
		rows, err = qc.QueryContext(ctx, args)
	} else {
		var vals []driver.Value
		vals, err = namedToValues(args)
		if err == nil {
			select {
			case <-ctx.Done():
				err = ctx.Err()
			default:
				rows, err = s.inner.Query(vals) //nolint:staticcheck
			}
		}
	}
	if err != nil {
		cl.endExec(ctx, nil, err)
		return nil, err
	}
	return newRows(ctx, cl, rows), nil
}

// CheckNamedValue mirrors database/sql's choice: the wrapped statement's
// checker, else the wrapped connection's, else the next in line.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if nvc, ok := s.inner.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	if nvc, ok := s.c.inner.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// ColumnConverter passes through, defaulting as database/sql would.
func (s *stmt) ColumnConverter(idx int) driver.ValueConverter { //nolint:staticcheck
	if cc, ok := s.inner.(driver.ColumnConverter); ok { //nolint:staticcheck
		return cc.ColumnConverter(idx)
	}
	return driver.DefaultParameterConverter
}

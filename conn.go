package guard

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/guardedsql/guard/internal/sqlinfo"
	"github.com/guardedsql/guard/policy"
)

// conn is a guarded driver.Conn. Every way a caller can send SQL through it,
// including the legacy context-free methods reachable through sql.Conn.Raw,
// goes through the pipeline.
//
// database/sql uses a driver.Conn from one goroutine at a time, so the fields
// below need no locking.
type conn struct {
	e     *engine
	inner driver.Conn
	inTx  bool
	// pending is a call already decided whose driver answered ErrSkip:
	// database/sql retries it as Prepare + Exec on this connection, and that
	// retry must not be decided or audited a second time.
	pending *call
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Execer             = (*conn)(nil) //nolint:staticcheck // legacy path must be guarded too
	_ driver.Queryer            = (*conn)(nil) //nolint:staticcheck
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

func newConn(e *engine, inner driver.Conn) *conn { return &conn{e: e, inner: inner} }

// takePending returns the call an ErrSkip left for query, if any.
func (c *conn) takePending(query string) *call {
	p := c.pending
	c.pending = nil
	if p != nil && p.query != query {
		// database/sql always retries the same text at once; anything else
		// means the retry never came. Its record says so.
		p.endWith(context.Background(), outcomeOf(driver.ErrSkip), 0)
		return nil
	}
	return p
}

// Prepare is the legacy form of PrepareContext.
func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext prepares on the wrapped connection. The statement is decided
// when it runs, with the identity of the context it runs with.
func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	carried := c.takePending(query)
	var an *sqlinfo.Analysis
	if carried != nil {
		an = carried.an
	} else {
		an = c.e.analyze(query)
	}
	copyIn := isCopyFromStdin(an, query)
	if copyIn && carried == nil {
		// lib/pq sends COPY ... FROM STDIN to the server at Prepare, so that
		// is where it must be decided, with the preparing context's identity.
		cl, err := c.e.begin(ctx, query, an, policy.KindExec, c.inTx)
		if err != nil {
			return nil, err
		}
		carried = cl
	}
	var (
		inner driver.Stmt
		err   error
	)
	if pc, ok := c.inner.(driver.ConnPrepareContext); ok {
		inner, err = pc.PrepareContext(ctx, query)
	} else {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		default:
			inner, err = c.inner.Prepare(query)
		}
	}
	if err != nil {
		if carried != nil {
			carried.endExec(ctx, nil, err)
		}
		return nil, err
	}
	st := &stmt{c: c, inner: inner, query: query, an: an, copyIn: copyIn}
	if copyIn {
		st.copy = carried
	} else {
		st.carried = carried
	}
	return st, nil
}

// Close closes the wrapped connection.
func (c *conn) Close() error {
	if p := c.pending; p != nil {
		c.pending = nil
		p.endWith(context.Background(), outcomeOf(driver.ErrSkip), 0)
	}
	return c.inner.Close()
}

// Begin is the legacy form of BeginTx.
func (c *conn) Begin() (driver.Tx, error) { //nolint:staticcheck
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx starts a transaction on the wrapped connection.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.takePending("")
	var (
		tx  driver.Tx
		err error
	)
	if bt, ok := c.inner.(driver.ConnBeginTx); ok {
		tx, err = bt.BeginTx(ctx, opts)
	} else {
		// The same checks database/sql makes for a driver without BeginTx.
		switch {
		case opts.Isolation != driver.IsolationLevel(0):
			err = errors.New("sql: driver does not support non-default isolation level")
		case opts.ReadOnly:
			err = errors.New("sql: driver does not support read-only transactions")
		default:
			select {
			case <-ctx.Done():
				err = ctx.Err()
			default:
				tx, err = c.inner.Begin() //nolint:staticcheck
			}
		}
	}
	c.e.emitTCL(ctx, "BEGIN", err)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return &tx_{c: c, inner: tx, ctx: ctx}, nil
}

// Exec is the legacy form of ExecContext.
func (c *conn) Exec(query string, args []driver.Value) (driver.Result, error) { //nolint:staticcheck
	return c.ExecContext(context.Background(), query, valuesToNamed(args))
}

// ExecContext decides the statement, runs it, and records it.
func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.takePending("")
	execer, hasCtx := c.inner.(driver.ExecerContext)
	legacy, hasLegacy := c.inner.(driver.Execer) //nolint:staticcheck
	if !hasCtx && !hasLegacy {
		// database/sql falls back to Prepare + Exec, which is guarded there.
		return nil, driver.ErrSkip
	}
	cl, err := c.e.begin(ctx, query, nil, policy.KindExec, c.inTx)
	if err != nil {
		return nil, err
	}
	var res driver.Result
	if hasCtx {
		res, err = execer.ExecContext(ctx, query, args)
	} else {
		res, err = execLegacy(ctx, legacy, query, args)
	}
	if err == driver.ErrSkip { //nolint:errorlint // database/sql compares ErrSkip by identity
		c.pending = cl
		return nil, driver.ErrSkip
	}
	cl.endExec(ctx, res, err)
	return res, err
}

// Query is the legacy form of QueryContext.
func (c *conn) Query(query string, args []driver.Value) (driver.Rows, error) { //nolint:staticcheck
	return c.QueryContext(context.Background(), query, valuesToNamed(args))
}

// QueryContext decides the statement, runs it, and returns masking rows that
// record the statement when they are closed.
func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.takePending("")
	queryer, hasCtx := c.inner.(driver.QueryerContext)
	legacy, hasLegacy := c.inner.(driver.Queryer) //nolint:staticcheck
	if !hasCtx && !hasLegacy {
		return nil, driver.ErrSkip
	}
	cl, err := c.e.begin(ctx, query, nil, policy.KindQuery, c.inTx)
	if err != nil {
		return nil, err
	}
	var rows driver.Rows
	if hasCtx {
		rows, err = queryer.QueryContext(ctx, query, args)
	} else {
		rows, err = queryLegacy(ctx, legacy, query, args)
	}
	if err == driver.ErrSkip { //nolint:errorlint
		c.pending = cl
		return nil, driver.ErrSkip
	}
	if err != nil {
		cl.endExec(ctx, nil, err)
		return nil, err
	}
	return newRows(ctx, cl, rows), nil
}

// Ping checks the wrapped connection.
func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// ResetSession passes through to the wrapped connection and forgets
// per-session state.
func (c *conn) ResetSession(ctx context.Context) error {
	c.takePending("")
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// IsValid passes through to the wrapped connection.
func (c *conn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// CheckNamedValue passes argument conversion to the wrapped connection, so
// drivers that accept more Go types (pgx) or convert slices (lib/pq) keep
// doing so.
func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if nvc, ok := c.inner.(driver.NamedValueChecker); ok {
		return nvc.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// tx_ is a guarded driver.Tx. (The name avoids the common variable name tx.)
type tx_ struct {
	c     *conn
	inner driver.Tx
	ctx   context.Context
}

// Commit commits the wrapped transaction and records it.
func (t *tx_) Commit() error {
	err := t.inner.Commit()
	t.c.inTx = false
	t.c.e.emitTCL(t.ctx, "COMMIT", err)
	return err
}

// Rollback rolls back the wrapped transaction and records it.
func (t *tx_) Rollback() error {
	err := t.inner.Rollback()
	t.c.inTx = false
	t.c.e.emitTCL(t.ctx, "ROLLBACK", err)
	return err
}

func valuesToNamed(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

func namedToValues(args []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("sql: driver does not support the use of Named Parameters")
		}
		out[i] = a.Value
	}
	return out, nil
}

func execLegacy(ctx context.Context, e driver.Execer, query string, args []driver.NamedValue) (driver.Result, error) { //nolint:staticcheck
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
	}
	return e.Exec(query, vals)
}

func queryLegacy(ctx context.Context, q driver.Queryer, query string, args []driver.NamedValue) (driver.Rows, error) { //nolint:staticcheck
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
	}
	return q.Query(query, vals)
}

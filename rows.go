package guard

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"

	"github.com/guardedsql/guard/mask"
)

// rows masks each row before database/sql sees it and records the statement
// once, when the rows are closed.
//
// database/sql serialises Next and Close with its own lock, but Close can
// come from another goroutine when ctx is cancelled; the record is emitted
// through call.endWith, which runs once whoever gets there first.
type rows struct {
	ctx   context.Context
	cl    *call
	inner driver.Rows
	plan  mask.Plan
	set   int
}

var (
	_ driver.Rows                           = (*rows)(nil)
	_ driver.RowsNextResultSet              = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypeNullable         = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
)

func newRows(ctx context.Context, cl *call, inner driver.Rows) *rows {
	r := &rows{ctx: ctx, cl: cl, inner: inner}
	r.plan = cl.planFor(ctx, 0, inner)
	return r
}

// Columns passes through.
func (r *rows) Columns() []string { return r.inner.Columns() }

// Next reads a row and masks it in dest.
func (r *rows) Next(dest []driver.Value) error {
	if err := r.inner.Next(dest); err != nil {
		return err
	}
	r.cl.rows.Add(1)
	if r.plan != nil {
		r.plan.Apply(dest)
	}
	return nil
}

// Close closes the wrapped rows and records the statement.
func (r *rows) Close() error {
	err := r.inner.Close()
	r.flushPlan()
	out := outcomeOf(err)
	if err == nil {
		if cerr := r.ctx.Err(); cerr != nil {
			out = outcomeOf(cerr)
		}
	}
	r.cl.endWith(r.ctx, out, 0)
	return err
}

func (r *rows) flushPlan() {
	if r.plan != nil {
		r.cl.addMasked(r.plan.Stats())
		r.plan = nil
	}
}

// HasNextResultSet passes through.
func (r *rows) HasNextResultSet() bool {
	if n, ok := r.inner.(driver.RowsNextResultSet); ok {
		return n.HasNextResultSet()
	}
	return false
}

// NextResultSet advances and builds the masking plan for the new result set:
// each result set has its own columns and its own statement.
func (r *rows) NextResultSet() error {
	n, ok := r.inner.(driver.RowsNextResultSet)
	if !ok {
		return io.EOF
	}
	if err := n.NextResultSet(); err != nil {
		return err
	}
	r.flushPlan()
	r.set++
	r.plan = r.cl.planFor(r.ctx, r.set, r.inner)
	return nil
}

var anyType = reflect.TypeOf(new(any)).Elem()

// ColumnTypeScanType passes through, defaulting as database/sql would.
func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.inner.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return anyType
}

// ColumnTypeDatabaseTypeName passes through.
func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.inner.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

// ColumnTypeLength passes through.
func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.inner.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

// ColumnTypeNullable passes through.
func (r *rows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.inner.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

// ColumnTypePrecisionScale passes through.
func (r *rows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.inner.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

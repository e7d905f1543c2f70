package mask

import (
	"context"
	"database/sql/driver"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// ResultSet describes one result set about to be returned to a caller.
type ResultSet struct {
	Identity identity.Identity
	// Statement is the statement that produced the result set, with its
	// output-column lineage; nil when it is not known. Its Columns must not
	// be modified once passed to Plan: the Engine caches what a lineage
	// decides per Columns array (the analyzer's results are read-only
	// already, and share that array among strings of one shape).
	Statement *sqlinfo.Statement
	// Columns are the column names the driver reports.
	Columns []string
	// DatabaseTypes are the driver's database type names per column ("" when unknown).
	DatabaseTypes []string
}

// ColumnStat says how one column of a result set was masked.
type ColumnStat struct {
	Column   string
	Class    string
	Rule     string
	Strategy string
	// Cells counts the cells actually rewritten (or, for a column the value
	// detectors scan, the values found in it).
	Cells int64
	// Source says how the class was found: "column-name",
	// "lineage:<schema.table.column>", "rule", "value" (a value detector in a
	// text cell) or "json" (a key or value inside a JSON cell).
	Source string
}

// Plan masks the rows of one result set. It is built once per result set.
type Plan interface {
	// Apply replaces sensitive values in dest with masked ones. It writes new
	// values into dest and never mutates the driver's memory in place.
	Apply(dest []driver.Value)
	// Stats reports what was masked so far.
	Stats() []ColumnStat
}

// Masker builds the plan for a result set. A nil Plan means nothing to mask.
type Masker interface {
	Plan(ctx context.Context, rs ResultSet) Plan
}

package sqlinfo

import "strings"

// Dialect names the SQL grammar a statement is read with.
type Dialect string

// Supported dialects.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
	// SQLite is read with the PostgreSQL grammar after SQLite's own
	// tokenizer has split the text and rewritten its parameters.
	SQLite Dialect = "sqlite"
)

// Effect classifies what a statement does, not how it starts.
type Effect string

// Effects, from harmless to unknowable. A statement the analyzer cannot read
// is Unknown, never a guess.
const (
	Read    Effect = "read"
	Write   Effect = "write"
	DDL     Effect = "ddl"
	DCL     Effect = "dcl"
	TCL     Effect = "tcl"
	Utility Effect = "utility"
	Unknown Effect = "unknown"
)

// Danger names a risky capability a statement uses, for policies to match on
// (`'file_access' in stmt.dangers`).
type Danger string

// Dangers the analyzer reports.
const (
	FileAccess         Danger = "file_access"          // COPY TO/FROM a server file, pg_read_file, lo_import/lo_export
	ProgramExecution   Danger = "program_execution"    // COPY ... PROGRAM
	RemoteAccess       Danger = "remote_access"        // dblink and kin
	DynamicSQL         Danger = "dynamic_sql"          // DO, EXECUTE, CALL, PREPARE
	PrivilegeChange    Danger = "privilege_change"     // GRANT, REVOKE, ALTER ROLE ...
	SessionChange      Danger = "session_change"       // SET ROLE, SET SESSION AUTHORIZATION, set_config, ALTER SYSTEM
	HiddenWrite        Danger = "hidden_write"         // writes that look like reads: SELECT INTO, CTAS, data-modifying CTE, EXPLAIN ANALYZE of a write
	SideEffectFunction Danger = "side_effect_function" // setval, nextval, pg_terminate_backend and kin
)

// Relation is a table, view or other named relation, schema-qualified when the
// statement qualifies it.
type Relation struct {
	Schema string
	Name   string
}

// String returns "schema.name", or "name" when unqualified.
func (r Relation) String() string {
	if r.Schema == "" {
		return r.Name
	}
	return r.Schema + "." + r.Name
}

// ColumnRef is a source column. Column "*" stands for every column of the
// relation (a whole-row reference such as row_to_json(u), or an unresolved *).
type ColumnRef struct {
	Relation Relation
	Column   string
}

// String returns "schema.table.column".
func (c ColumnRef) String() string {
	if c.Relation.Name == "" {
		return c.Column
	}
	return c.Relation.String() + "." + c.Column
}

// OutputColumn is one column of a statement's result with its lineage.
type OutputColumn struct {
	// Name is the column name the database will report, when it can be known.
	Name string
	// Sources are the columns the value is derived from, through aliases,
	// expressions, casts, aggregates, subqueries, CTEs, joins and UNION.
	Sources []ColumnRef
	// Star is true when this entry stands for an unexpanded `*` or `t.*`;
	// Sources then hold one "*" ref per relation it expands over.
	Star bool
}

// Statement holds the facts about one statement of a query string.
type Statement struct {
	// Text is this statement's own text.
	Text string
	// Command is the statement's command tag, e.g. "SELECT", "DROP TABLE", "COPY".
	Command string
	// Effect is what the statement does.
	Effect Effect
	// Reads and Writes are the relations read and written, deduplicated.
	Reads  []Relation
	Writes []Relation
	// HasWhere is true when an UPDATE or DELETE has a WHERE clause.
	HasWhere bool
	// WhereAlwaysTrue is true when that WHERE is trivially true (1=1, true,
	// 'a'='a', x OR 1=1, NOT false, id = id, x LIKE '%'...). It is also true
	// when a data-modifying CTE updates or deletes with no WHERE or a
	// trivially true one: the statement changes every row of a table.
	WhereAlwaysTrue bool
	// Limit is the statement's constant LIMIT (or FETCH FIRST), or -1 when it
	// has none or the limit is not a constant (LIMIT $1).
	Limit int64
	// Functions are the lower-cased names of the functions called, schema-qualified when written so.
	Functions []string
	// Columns are the output columns with their lineage, for statements that return rows.
	Columns []OutputColumn
	// Dangers are the risky capabilities the statement uses.
	Dangers []Danger
	// Error is the parser's or analyzer's message when Effect is Unknown.
	Error string
}

// HasDanger reports whether the statement uses d.
func (s *Statement) HasDanger(d Danger) bool {
	for _, x := range s.Dangers {
		if x == d {
			return true
		}
	}
	return false
}

// Analysis is what the analyzer knows about a whole query string.
//
// An *Analysis returned by Analyze may be shared through the cache with
// other callers and goroutines: treat it and every slice in it as read-only.
type Analysis struct {
	Dialect Dialect
	// Fingerprint identifies the statement's shape: literals and placeholders
	// folded, so the same parameterized statement always has the same one.
	Fingerprint string
	// Statements holds one entry per statement in the string, in order.
	// A string that cannot be split holds one Unknown statement.
	Statements []Statement
}

// effectRank orders effects by how much they can change, for Analysis.Effect.
var effectRank = map[Effect]int{Read: 0, TCL: 1, Utility: 2, Write: 3, DDL: 4, DCL: 5, Unknown: 6}

// Effect returns the most far-reaching effect of the statements in the string.
func (a *Analysis) Effect() Effect {
	if a == nil || len(a.Statements) == 0 {
		return Unknown
	}
	e := a.Statements[0].Effect
	for _, s := range a.Statements[1:] {
		if effectRank[s.Effect] > effectRank[e] {
			e = s.Effect
		}
	}
	return e
}

// Command returns the commands of the statements joined by ";".
func (a *Analysis) Command() string {
	if a == nil {
		return ""
	}
	if len(a.Statements) == 1 {
		return a.Statements[0].Command
	}
	parts := make([]string, len(a.Statements))
	for i := range a.Statements {
		parts[i] = a.Statements[i].Command
	}
	return strings.Join(parts, ";")
}

// Objects returns every relation read or written, deduplicated, in order of appearance.
func (a *Analysis) Objects() []string {
	if a == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for i := range a.Statements {
		for _, rs := range [][]Relation{a.Statements[i].Reads, a.Statements[i].Writes} {
			for _, r := range rs {
				if s := r.String(); !seen[s] {
					seen[s] = true
					out = append(out, s)
				}
			}
		}
	}
	return out
}

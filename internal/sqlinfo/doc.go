// Package sqlinfo reads SQL statements in the database's own grammar and
// reports what they do: the facts guardrail policies, masking and audit work
// from.
//
// PostgreSQL text is read with the real PostgreSQL parser (pg_query_go),
// MySQL and MariaDB text with github.com/xwb1989/sqlparser. Every statement
// in a string is analyzed; each gets its command, its effect (classified by
// what it does, not by its first keyword), the relations it reads and
// writes, its WHERE facts, LIMIT, functions, dangers and output-column
// lineage. Text the parser rejects, or the analyzer cannot classify, is
// Unknown with the parser's message: never a guess.
//
// Results are cached per statement shape (literals and placeholders folded),
// so a parameterized statement is parsed once per process. Facts that depend
// on a literal's value are never shared between strings of one shape.
//
//	a := sqlinfo.Analyze(sqlinfo.Postgres, "DELETE FROM orders WHERE 1=1")
//	st := a.Statements[0]
//	// st.Effect == sqlinfo.Write, st.HasWhere, st.WhereAlwaysTrue
//
// The *Analysis returned may be shared with other callers and must be
// treated as read-only.
package sqlinfo

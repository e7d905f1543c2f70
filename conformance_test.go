package guard_test

// The conformance suite: every scenario runs twice per driver, once on the
// raw driver and once through the guard with the pass-through pipeline, each
// on a fresh schema or database, and the two must return identical results:
// the same values with the same Go types, the same column metadata, the same
// errors. A guard that changes what an application sees is a broken driver,
// whatever else it does.
//
// Scenarios live in conformance_scenarios_test.go; this file holds the
// targets (driver x way of guarding it) and the runner.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
	"modernc.org/sqlite"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/testdb"
)

// Families of drivers, for scenarios that only some of them support.
const (
	famLibPQ  = "lib/pq"
	famPgx    = "pgx"
	famMySQL  = "mysql"
	famSQLite = "sqlite"
)

// confTarget is one driver and one way of putting the guard around it.
type confTarget struct {
	name    string
	family  string
	dialect string // postgres, mysql or sqlite: which SQL the scenarios write
	// dsn creates a fresh schema, database or file and returns its DSN.
	dsn func(t *testing.T) string
	// raw opens the driver itself on dsn.
	raw func(t *testing.T, dsn string) *sql.DB
	// guarded opens the driver through the guard on dsn. It returns the
	// in-memory auditor that sees every statement, or nil when the guard is
	// reached through a registration whose auditor the test cannot reach.
	guarded func(t *testing.T, dsn string) (*sql.DB, *audit.Memory)
	// multiResultSets says the driver returns every result set of a
	// multi-statement string.
	multiResultSets bool
}

// conformanceIdentity is who the scenarios act as: a service working for a
// human. (An agent's writes go to approval under the baseline policy, which
// is not what a conformance run is about.)
func conformanceIdentity() identity.Identity {
	return identity.Identity{
		Subject: "conformance-svc", Kind: identity.Service, Roles: []string{"tester"}, Session: "conformance",
		OnBehalfOf: &identity.Identity{Subject: "alice@example.com", Kind: identity.Human},
	}
}

func openSide(t *testing.T, driverName, dsn string) *sql.DB {
	t.Helper()
	return testdb.Open(t, driverName, dsn)
}

// openGuardedConnector opens a pool on a guarded connector and closes it with t.
func openGuardedConnector(t *testing.T, c driver.Connector) *sql.DB {
	t.Helper()
	db := sql.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.PingContext(context.Background()))
	return db
}

// openWrapped opens d through guard.Wrap the way sql.Open does: the driver's
// OpenConnector reads (and strips) the guard's DSN settings.
func openWrapped(t *testing.T, d driver.Driver, dsn string, opts ...guard.Option) *sql.DB {
	t.Helper()
	wd := guard.Wrap(d, opts...)
	dc, ok := wd.(driver.DriverContext)
	require.True(t, ok, "guard.Wrap must return a driver.DriverContext")
	c, err := dc.OpenConnector(dsn)
	require.NoError(t, err)
	return openGuardedConnector(t, c)
}

func conformanceMySQLDSN(t *testing.T) string {
	cfg, err := mysql.ParseDSN(testdb.MariaDBDSN(t))
	require.NoError(t, err)
	cfg.MultiStatements = true
	cfg.ParseTime = true
	// MariaDB stops a recursive CTE after 1000 rounds by default; the
	// scenarios generate large results with one.
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["max_recursive_iterations"] = "1000000"
	return cfg.FormatDSN()
}

// passThrough is how the guard runs here: every statement is still analyzed,
// decided and recorded, but in observe mode nothing is blocked, and masking
// is off because the
// comparison is of the driver layer. (The scenarios deliberately send
// statements the baseline policy refuses, such as malformed SQL to get a
// driver error and an UPDATE without WHERE to roll back; policy/e2e_test.go
// covers the enforced baseline.)
var passThrough = []guard.Option{guard.WithObserveOnly(true), guard.WithoutMasking()}

func withDSNParams(dsn, params string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	if strings.Contains(dsn, "://") {
		return dsn + "?" + params
	}
	return dsn + " " + strings.ReplaceAll(params, "&", " ")
}

func conformanceTargets() []*confTarget {
	return []*confTarget{
		{
			name: "lib_pq", family: famLibPQ, dialect: "postgres", multiResultSets: true,
			dsn: func(t *testing.T) string { return testdb.PostgresDSN(t) },
			raw: func(t *testing.T, dsn string) *sql.DB { return openSide(t, "postgres", dsn) },
			guarded: func(t *testing.T, dsn string) (*sql.DB, *audit.Memory) {
				c, err := pq.NewConnector(dsn)
				require.NoError(t, err)
				mem := audit.NewMemory(0)
				return openGuardedConnector(t, guard.NewConnector(c, append(passThrough, guard.WithAuditor(mem))...)), mem
			},
		},
		{
			// The ready-made registration, as a drop-in user gets it.
			name: "guarded-postgres", family: famLibPQ, dialect: "postgres", multiResultSets: true,
			dsn: func(t *testing.T) string { return testdb.PostgresDSN(t) },
			raw: func(t *testing.T, dsn string) *sql.DB { return openSide(t, "postgres", dsn) },
			guarded: func(t *testing.T, dsn string) (*sql.DB, *audit.Memory) {
				return openSide(t, guard.PostgresDriverName, withDSNParams(dsn, "guard.mode=observe&guard.masking=off")), nil
			},
		},
		{
			name: "pgx_stdlib", family: famPgx, dialect: "postgres",
			dsn: func(t *testing.T) string { return testdb.PostgresDSN(t) },
			raw: func(t *testing.T, dsn string) *sql.DB { return openSide(t, "pgx", dsn) },
			guarded: func(t *testing.T, dsn string) (*sql.DB, *audit.Memory) {
				cfg, err := pgx.ParseConfig(dsn)
				require.NoError(t, err)
				mem := audit.NewMemory(0)
				return openGuardedConnector(t, guard.NewConnector(stdlib.GetConnector(*cfg), append(passThrough, guard.WithAuditor(mem))...)), mem
			},
		},
		{
			name: "mariadb", family: famMySQL, dialect: "mysql", multiResultSets: true,
			dsn: conformanceMySQLDSN,
			raw: func(t *testing.T, dsn string) *sql.DB { return openSide(t, "mysql", dsn) },
			guarded: func(t *testing.T, dsn string) (*sql.DB, *audit.Memory) {
				mem := audit.NewMemory(0)
				return openWrapped(t, &mysql.MySQLDriver{}, dsn, append(passThrough, guard.WithAuditor(mem))...), mem
			},
		},
		{
			name: "sqlite", family: famSQLite, dialect: "sqlite",
			dsn: func(t *testing.T) string { return testdb.SQLiteDSN(t) },
			raw: func(t *testing.T, dsn string) *sql.DB { return openSide(t, "sqlite", dsn) },
			guarded: func(t *testing.T, dsn string) (*sql.DB, *audit.Memory) {
				mem := audit.NewMemory(0)
				return openWrapped(t, &sqlite.Driver{}, dsn, append(passThrough, guard.WithAuditor(mem))...), mem
			},
		},
	}
}

// confSession is what a scenario runs with: one side's pool and the context
// carrying the conformance identity.
type confSession struct {
	t       *testing.T
	tg      *confTarget
	db      *sql.DB
	ctx     context.Context
	guarded bool
}

// q rewrites $n placeholders for drivers that take ?.
func (s *confSession) q(query string) string {
	if s.tg.dialect == "postgres" {
		return query
	}
	return dollarParam.ReplaceAllString(query, "?")
}

var dollarParam = regexp.MustCompile(`\$[0-9]+`)

// testNamespace matches the schema and database names internal/testdb makes.
var testNamespace = regexp.MustCompile(`guard_t_[a-z0-9_]+`)

// exec runs a statement that must succeed.
func (s *confSession) exec(query string, args ...any) sql.Result {
	s.t.Helper()
	res, err := s.db.ExecContext(s.ctx, s.q(query), args...)
	require.NoError(s.t, err, query)
	return res
}

// query runs a query that must succeed and returns every result set.
func (s *confSession) query(query string, args ...any) []confResultSet {
	s.t.Helper()
	rows, err := s.db.QueryContext(s.ctx, s.q(query), args...)
	require.NoError(s.t, err, query)
	return collectSets(s.t, rows)
}

// count returns SELECT count(*) FROM table.
func (s *confSession) count(table string) int64 {
	s.t.Helper()
	var n int64
	require.NoError(s.t, s.db.QueryRowContext(s.ctx, "SELECT count(*) FROM "+table).Scan(&n))
	return n
}

// confResultSet is one result set as an application sees it.
type confResultSet struct {
	Columns []confColumn
	Rows    [][]any
}

// confColumn is what ColumnTypes reports, which the guard must pass through.
type confColumn struct {
	Name         string
	DatabaseType string
	ScanType     string
	Nullable     string
	Length       string
	Decimal      string
}

// collectSets reads every row of every result set, scanning into *any so the
// driver's own Go types are compared, and closes rows.
func collectSets(t *testing.T, rows *sql.Rows) []confResultSet {
	t.Helper()
	defer rows.Close()
	var sets []confResultSet
	for {
		var rs confResultSet
		cts, err := rows.ColumnTypes()
		require.NoError(t, err)
		for _, ct := range cts {
			c := confColumn{Name: ct.Name(), DatabaseType: ct.DatabaseTypeName()}
			if st := ct.ScanType(); st != nil {
				c.ScanType = st.String()
			}
			if n, ok := ct.Nullable(); ok {
				c.Nullable = fmt.Sprint(n)
			}
			if n, ok := ct.Length(); ok {
				c.Length = fmt.Sprint(n)
			}
			if p, sc, ok := ct.DecimalSize(); ok {
				c.Decimal = fmt.Sprint(p, ",", sc)
			}
			rs.Columns = append(rs.Columns, c)
		}
		for rows.Next() {
			vals := make([]any, len(cts))
			ptrs := make([]any, len(cts))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			rs.Rows = append(rs.Rows, vals)
		}
		require.NoError(t, rows.Err())
		sets = append(sets, rs)
		if !rows.NextResultSet() {
			break
		}
	}
	require.NoError(t, rows.Err())
	return sets
}

// confErr is what an application can learn from an error: its text, whether
// it is the driver's own error type (errors.As) and the code in it.
type confErr struct {
	Text     string
	AsDriver bool
	Code     string
	Canceled bool
	NoRows   bool
}

func inspectErr(err error) confErr {
	if err == nil {
		return confErr{}
	}
	ei := confErr{
		// Raw and guarded run in namespaces of their own, which some
		// messages name.
		Text:     testNamespace.ReplaceAllString(err.Error(), "guard_t_NS"),
		Canceled: errors.Is(err, context.Canceled),
		NoRows:   errors.Is(err, sql.ErrNoRows),
	}
	var pqErr *pq.Error
	var pgErr *pgconn.PgError
	var myErr *mysql.MySQLError
	var liteErr *sqlite.Error
	switch {
	case errors.As(err, &pqErr):
		ei.AsDriver, ei.Code = true, string(pqErr.Code)
	case errors.As(err, &pgErr):
		ei.AsDriver, ei.Code = true, pgErr.Code
	case errors.As(err, &myErr):
		ei.AsDriver, ei.Code = true, fmt.Sprint(myErr.Number)
	case errors.As(err, &liteErr):
		ei.AsDriver, ei.Code = true, fmt.Sprint(liteErr.Code())
	}
	return ei
}

// TestConformance runs every scenario raw and guarded on every target and
// requires identical results.
func TestConformance(t *testing.T) {
	for _, tg := range conformanceTargets() {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, sc := range conformanceScenarios() {
				if sc.families != nil && !sc.families[tg.family] {
					continue // the driver has no such feature (e.g. COPY outside lib/pq)
				}
				t.Run(sc.name, func(t *testing.T) {
					runScenario(t, tg, sc)
				})
			}
		})
	}
}

func runScenario(t *testing.T, tg *confTarget, sc confScenario) {
	ctx := identity.With(context.Background(), conformanceIdentity())

	rawDB := tg.raw(t, tg.dsn(t))
	raw := sc.run(&confSession{t: t, tg: tg, db: rawDB, ctx: ctx})

	gDB, mem := tg.guarded(t, tg.dsn(t))
	requireGuarded(t, gDB)
	guarded := sc.run(&confSession{t: t, tg: tg, db: gDB, ctx: ctx, guarded: true})

	require.Equal(t, raw, guarded, "raw and guarded results differ")

	// Closing first settles every record of statements finished by
	// database/sql's own goroutines (a cancelled query's rows).
	require.NoError(t, gDB.Close())
	if mem != nil {
		requireAudited(t, mem)
	}
}

// requireGuarded makes sure the guarded side is not the raw driver in
// disguise, which would make every comparison pass.
func requireGuarded(t *testing.T, db *sql.DB) {
	t.Helper()
	typ := fmt.Sprintf("%T", db.Driver())
	require.False(t, strings.Contains(typ, "pq.") || strings.Contains(typ, "stdlib.") ||
		strings.Contains(typ, "mysql.") || strings.Contains(typ, "sqlite."),
		"the guarded pool's driver is %s, not the guard's", typ)
}

// requireAudited checks that the statements went through the pipeline with
// the caller's identity and its delegation chain.
func requireAudited(t *testing.T, mem *audit.Memory) {
	t.Helper()
	var stmts int
	for _, r := range mem.Records() {
		if r.Kind != audit.KindStatement {
			continue
		}
		stmts++
		require.NotNil(t, r.Identity, "statement record without identity: %q", r.Statement)
		require.Equal(t, "conformance-svc", r.Identity.Subject, r.Statement)
		require.NotEmpty(t, r.OnBehalfOf, r.Statement)
		require.Equal(t, "alice@example.com", r.OnBehalfOf[0].Subject, r.Statement)
	}
	require.Positive(t, stmts, "the guarded side left no statement audit record")
}

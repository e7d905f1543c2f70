package guard_test

import (
	"crypto/md5"

	"github.com/go-sql-driver/mysql"
	"github.com/guardedsql/guard/internal/testdb"

	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lib/pq"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/mask"
	"github.com/guardedsql/guard/policy"
)

func pgDSN(t testing.TB) string {
	t.Helper()
	return testdb.ReachablePostgres(t)
}

func mysqlDSN(t testing.TB) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(testdb.ReachableMariaDB(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

// uniqueName returns a table name no other test or package run will use.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), time.Now().UnixNano()%1_000_000_000)
}

// countingPolicy decides with f and counts its calls.
type countingPolicy struct {
	calls atomic.Int64
	mu    sync.Mutex
	seen  []policy.Input
	f     func(in *policy.Input) policy.Decision
}

func (p *countingPolicy) Decide(_ context.Context, in *policy.Input) policy.Decision {
	p.calls.Add(1)
	p.mu.Lock()
	p.seen = append(p.seen, *in)
	p.mu.Unlock()
	if p.f == nil {
		return policy.Decision{Effect: policy.Allow}
	}
	return p.f(in)
}

// denyText denies statements whose text contains word (upper-cased).
func denyText(word string) *countingPolicy {
	return &countingPolicy{f: func(in *policy.Input) policy.Decision {
		for _, s := range in.Analysis.Statements {
			if strings.Contains(strings.ToUpper(s.Text), word) {
				return policy.Decision{Effect: policy.Deny, Rule: "no-" + strings.ToLower(word), Message: word + " is not allowed"}
			}
		}
		return policy.Decision{Effect: policy.Allow}
	}}
}

// statementRecords returns the statement records whose text contains sub.
func statementRecords(m *audit.Memory, sub string) []audit.Record {
	var out []audit.Record
	for _, r := range m.Records() {
		if r.Kind == audit.KindStatement && strings.Contains(r.Statement, sub) {
			out = append(out, r)
		}
	}
	return out
}

// openPQ opens lib/pq through guard.NewConnector with opts.
func openPQ(t testing.TB, opts ...guard.Option) *sql.DB {
	t.Helper()
	c, err := pq.NewConnector(pgDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(guard.NewConnector(c, opts...))
	t.Cleanup(func() { db.Close() })
	return db
}

func rawPQ(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", pgDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// funcMasker is a Masker built from a function over the column names.
type funcMasker struct {
	plans atomic.Int64
	cols  sync.Map // result set index -> []string, for tests that look
	f     func(rs mask.ResultSet) mask.Plan
}

func (m *funcMasker) Plan(_ context.Context, rs mask.ResultSet) mask.Plan {
	n := m.plans.Add(1)
	m.cols.Store(n, rs.Columns)
	return m.f(rs)
}

// columnPlan rewrites the named columns with repl(value).
type columnPlan struct {
	idx   []int
	repl  func(v driver.Value) driver.Value
	cells atomic.Int64
	names []string
}

func (p *columnPlan) Apply(dest []driver.Value) {
	for _, i := range p.idx {
		if dest[i] != nil {
			dest[i] = p.repl(dest[i])
			p.cells.Add(1)
		}
	}
}

func (p *columnPlan) Stats() []mask.ColumnStat {
	var out []mask.ColumnStat
	for _, n := range p.names {
		out = append(out, mask.ColumnStat{Column: n, Rule: "test", Strategy: "test", Cells: p.cells.Load()})
	}
	return out
}

// maskColumns masks the named columns with repl.
func maskColumns(repl func(driver.Value) driver.Value, names ...string) *funcMasker {
	return &funcMasker{f: func(rs mask.ResultSet) mask.Plan {
		p := &columnPlan{repl: repl}
		for i, c := range rs.Columns {
			for _, n := range names {
				if c == n {
					p.idx = append(p.idx, i)
					p.names = append(p.names, c)
				}
			}
		}
		if len(p.idx) == 0 {
			return nil
		}
		return p
	}}
}

func md5hex(id int) string {
	return fmt.Sprintf("%x", md5.Sum([]byte(fmt.Sprint(id))))
}

func mustPgxConfig(t testing.TB) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(pgDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

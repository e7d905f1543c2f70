package policy_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/testdb"
	"github.com/guardedsql/guard/policy"
	"github.com/guardedsql/guard/policy/approval"
)

// The end-to-end decision matrix: identities x statements x environments,
// for the baseline and for a team policy with identity- and table-based
// rules, run through sql.Open on a guarded lib/pq against the real
// PostgreSQL. A statement the guard stops must never reach the database;
// two witnesses prove it:
//   - the guarded pool has one connection; before each case a marker query
//     runs on it, and afterwards pg_stat_activity must still show the marker
//     as that backend's last statement;
//   - the fixture's fingerprint (rows, sums, tables, grants, a log written
//     by every read of the salaries view, files COPY would create, the
//     session's role) must be unchanged.

// e2eSchema is this test process's own schema: the statements below say
// policy_e2e and sch rewrites them, so concurrent runs of this package (CI
// shards, two developers) never share a fixture.
var e2eSchema = fmt.Sprintf("policy_e2e_%d", os.Getpid())

func sch(s string) string { return strings.ReplaceAll(s, "policy_e2e", e2eSchema) }

var e2eFixture = []string{
	`DROP SCHEMA IF EXISTS policy_e2e CASCADE`,
	`CREATE SCHEMA policy_e2e`,
	`CREATE TABLE policy_e2e.orders (id int PRIMARY KEY, total int NOT NULL)`,
	`INSERT INTO policy_e2e.orders SELECT g, g * 10 FROM generate_series(1, 5) g`,
	`CREATE TABLE policy_e2e.customers (id int PRIMARY KEY, email text)`,
	`INSERT INTO policy_e2e.customers VALUES (1, 'ann@example.com'), (2, 'bo@example.com')`,
	`CREATE TABLE policy_e2e.victim (id int, note text)`,
	`INSERT INTO policy_e2e.victim VALUES (1, 'still here')`,
	`CREATE TABLE policy_e2e.access_log (n serial, at timestamptz DEFAULT now())`,
	`CREATE FUNCTION policy_e2e.salaries_logged() RETURNS TABLE (id int, amount int) LANGUAGE plpgsql VOLATILE AS $$
	 BEGIN INSERT INTO policy_e2e.access_log DEFAULT VALUES; RETURN QUERY SELECT 1, 5000; END $$`,
	`CREATE VIEW policy_e2e.salaries AS SELECT * FROM policy_e2e.salaries_logged()`,
}

// The files COPY TO and COPY TO PROGRAM would write (server and test share a host).
const (
	copyFile    = "/tmp/policy_e2e_copy.csv"
	programFile = "/tmp/policy_e2e_program"
)

const e2eFingerprint = `SELECT
 (SELECT count(*) || ':' || coalesce(sum(total), 0) FROM policy_e2e.orders) || '|' ||
 (SELECT count(*) FROM policy_e2e.customers) || '|' ||
 (SELECT count(*) FROM policy_e2e.access_log) || '|' ||
 (SELECT string_agg(table_name || '(' || (SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns c
     WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name) || ')', ',' ORDER BY table_name)
  FROM information_schema.tables t WHERE table_schema = 'policy_e2e') || '|' ||
 (SELECT count(*) FROM information_schema.role_table_grants WHERE table_schema = 'policy_e2e' AND grantee = 'PUBLIC')`

func pgDSN(t testing.TB) string {
	t.Helper()
	return testdb.ReachablePostgres(t)
}

// Identities of the matrix, in the column order of the expectations.
var e2eIDs = []struct {
	name string
	id   *identity.Identity // nil: no identity in the context (anonymous)
}{
	{"app", &identity.Identity{Subject: "billing", Kind: identity.Service}},
	{"alice", &identity.Identity{Subject: "alice@example.com", Kind: identity.Human, Roles: []string{"analyst"}}},
	{"copilot", &identity.Identity{Subject: "copilot-7", Kind: identity.Agent, Session: "conv-42",
		OnBehalfOf: &identity.Identity{Subject: "alice@example.com", Kind: identity.Human, Roles: []string{"analyst"}}}},
	{"anon", nil},
	{"bob", &identity.Identity{Subject: "bob@example.com", Kind: identity.Human, Roles: []string{"hr", "dba"}}},
}

// e2eStatement is a statement with the expected outcome per identity:
// space-separated tokens "effect[:rule]", effect A allow, U audit,
// P require_approval, D deny.
type e2eStatement struct {
	sql    string
	args   []any
	query  bool // run with QueryContext and read the rows
	expect string
}

var baselineStatements = []e2eStatement{
	{sql: "SELECT id, total FROM policy_e2e.orders WHERE id = $1", args: []any{1}, query: true, expect: "A A A A A"},
	{sql: "SELECT count(*) FROM policy_e2e.salaries", query: true, expect: "A A A A A"},
	{sql: "INSERT INTO policy_e2e.orders (id, total) VALUES (100, 1)", expect: "A A P:agent-writes-need-approval A A"},
	{sql: "UPDATE policy_e2e.orders SET total = total + 1 WHERE id = $1", args: []any{1}, expect: "A A P:agent-writes-need-approval A A"},
	{sql: "DELETE FROM policy_e2e.orders WHERE id = 2", expect: "A A P A A"},
	{sql: "CREATE TABLE policy_e2e.scratch (id int)", expect: "A A P A A"},
	{sql: "WITH d AS (DELETE FROM policy_e2e.orders WHERE id = 3 RETURNING id) SELECT count(*) FROM d", query: true, expect: "A A P A A"},
	{sql: "UPDATE policy_e2e.orders SET total = 0", expect: "D:deny-unbounded-write D D D D"},
	{sql: "DELETE FROM policy_e2e.orders WHERE 1=1", expect: "D:deny-unbounded-write D D D D"},
	{sql: "DELETE FROM policy_e2e.orders WHERE true OR id = 1", expect: "D D D D D"},
	{sql: "WITH d AS (DELETE FROM policy_e2e.orders RETURNING id) SELECT count(*) FROM d", query: true, expect: "D:deny-unbounded-write D D D D"},
	{sql: "EXPLAIN ANALYZE DELETE FROM policy_e2e.orders", query: true, expect: "D:deny-unbounded-write D D D D"},
	{sql: "DROP TABLE policy_e2e.victim", expect: "D:deny-drop D:deny-drop D:deny-drop D:deny-drop D:deny-drop"},
	{sql: "TRUNCATE policy_e2e.orders", expect: "D:deny-truncate D D D D"},
	{sql: "ALTER TABLE policy_e2e.victim DROP COLUMN note", expect: "D:deny-alter-drop D D D D"},
	{sql: "GRANT SELECT ON policy_e2e.orders TO PUBLIC", expect: "D:deny-privilege-change D D D D"},
	{sql: "SET ROLE pg_read_all_data", expect: "D:deny-session-change D D D D"},
	{sql: "COPY policy_e2e.orders TO '" + copyFile + "'", expect: "D:deny-server-file-access D D D D"},
	{sql: "COPY (SELECT 1) TO PROGRAM 'touch " + programFile + "'", expect: "D:deny-server-file-access D D D D"},
	{sql: "SELECT pg_read_file('/etc/hostname')", query: true, expect: "D:deny-server-file-access D D D D"},
	{sql: "DO $$ BEGIN INSERT INTO policy_e2e.orders VALUES (999, 9); END $$", expect: "D D D D D"},
	{sql: "SELEC id FRM policy_e2e.orders", expect: "D:deny-unknown-statement D D D D"},
	{sql: "SELECT 1; DROP TABLE policy_e2e.victim", expect: "D:deny-drop D D D D"},
}

const teamPolicy = `version: 1
name: team
extends: baseline
env: {env: production}
rules:
  # Same name: replaces the baseline's rule, so agents write freely outside production.
  - name: agent-writes-need-approval
    match: >-
      identity.kind == 'agent' && env.env == 'production' &&
      (stmt.effect in ['write', 'ddl'] || 'hidden_write' in stmt.dangers)
    effect: require_approval
  - name: payroll-only-for-hr
    match: "stmt.tables.exists(t, t.endsWith('salaries')) && !('hr' in identity.principal.roles)"
    effect: deny
    message_expr: "'only HR may read ' + stmt.tables[0]"
  - name: audit-customer-reads
    match: "'policy_e2e.customers' in stmt.reads"
    effect: audit
  - name: agents-page-customers
    match: "identity.kind == 'agent' && stmt.reads.exists(r, r.endsWith('customers')) && stmt.limit < 0"
    effect: deny
    message: agents must read customers with a LIMIT
  - name: prod-ddl-needs-approval
    match: "env.env == 'production' && stmt.effect == 'ddl' && !('dba' in identity.roles)"
    effect: require_approval
  - name: anonymous-read-only
    match: identity.anonymous && stmt.effect != 'read'
    effect: deny
`

var teamStatements = map[string][]e2eStatement{
	"production": {
		{sql: "SELECT id, total FROM policy_e2e.orders WHERE id = $1", args: []any{1}, query: true, expect: "A A A A A"},
		{sql: "SELECT count(*) FROM policy_e2e.salaries", query: true, expect: "D:payroll-only-for-hr D D D A"},
		{sql: "SELECT id, email FROM policy_e2e.customers LIMIT 10", query: true, expect: "U:audit-customer-reads U U U U"},
		{sql: "SELECT id, email FROM policy_e2e.customers", query: true, expect: "U U D:agents-page-customers U U"},
		{sql: "INSERT INTO policy_e2e.orders (id, total) VALUES (100, 1)", expect: "A A P:agent-writes-need-approval D:anonymous-read-only A"},
		{sql: "CREATE TABLE policy_e2e.scratch (id int)", expect: "P:prod-ddl-needs-approval P:prod-ddl-needs-approval P D:anonymous-read-only A"},
		{sql: "DROP TABLE policy_e2e.victim", expect: "D:deny-drop D D D D"},
		{sql: "UPDATE policy_e2e.orders SET total = 0", expect: "D:deny-unbounded-write D D D D"},
	},
	"staging": {
		{sql: "SELECT id, total FROM policy_e2e.orders WHERE id = $1", args: []any{1}, query: true, expect: "A A A A A"},
		{sql: "SELECT count(*) FROM policy_e2e.salaries", query: true, expect: "D:payroll-only-for-hr D D D A"},
		{sql: "SELECT id, email FROM policy_e2e.customers LIMIT 10", query: true, expect: "U U U U U"},
		{sql: "SELECT id, email FROM policy_e2e.customers", query: true, expect: "U U D U U"},
		{sql: "INSERT INTO policy_e2e.orders (id, total) VALUES (100, 1)", expect: "A A A D:anonymous-read-only A"},
		{sql: "CREATE TABLE policy_e2e.scratch (id int)", expect: "A A A D A"},
		{sql: "DROP TABLE policy_e2e.victim", expect: "D:deny-drop D D D D"},
		{sql: "UPDATE policy_e2e.orders SET total = 0", expect: "D:deny-unbounded-write D D D D"},
	},
}

// rejectAll is a reviewer who says no, remembering what was asked.
type rejectAll struct {
	mu   sync.Mutex
	reqs []approval.Request
}

func (r *rejectAll) Approve(_ context.Context, req approval.Request) (approval.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return approval.Result{Approved: false, Reviewer: "e2e-reviewer", Reason: "test"}, nil
}

func (r *rejectAll) take() []approval.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

var driverSeq atomic.Int32

// e2eEnv is one guarded database with its witnesses.
type e2eEnv struct {
	raw      *sql.DB // unguarded, for fixture and witnesses
	db       *sql.DB // guarded, one connection
	mem      *audit.Memory
	reviewer *rejectAll
	version  string
	dirty    bool // the last case may have changed the fixture
}

func newE2E(t *testing.T, dsn string, d policy.Decider, version string) *e2eEnv {
	t.Helper()
	raw, err := sql.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { raw.Close() })
	e := &e2eEnv{raw: raw, mem: audit.NewMemory(0), reviewer: &rejectAll{}, version: version, dirty: true}
	// The same registration guarded-postgres uses (lib/pq inside), with this
	// test's policy, reviewer and audit sink.
	name := fmt.Sprintf("guarded-postgres-policy-e2e-%d", driverSeq.Add(1))
	guard.Register(name, &pq.Driver{}, guard.WithPolicy(d), guard.WithApprover(e.reviewer), guard.WithAuditor(e.mem), guard.WithoutMasking())
	db, err := sql.Open(name, dsn)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	t.Cleanup(func() { db.Close() })
	e.db = db
	return e
}

var appCtx = identity.With(context.Background(), identity.Identity{Subject: "e2e-harness", Kind: identity.Service})

func (e *e2eEnv) reset(t *testing.T) {
	t.Helper()
	for _, q := range e2eFixture {
		_, err := e.raw.Exec(sch(q))
		require.NoError(t, err, q)
	}
	for _, f := range []string{sch(copyFile), sch(programFile)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			// The server wrote it as another user; have it removed the same way it was made.
			_, _ = e.raw.Exec(fmt.Sprintf("COPY (SELECT 1) TO PROGRAM 'rm -f %s'", f))
		}
	}
}

// witness returns the fixture's fingerprint and the files and role a
// statement that reached the database could have changed.
func (e *e2eEnv) witness(t *testing.T) string {
	t.Helper()
	var fp string
	require.NoError(t, e.raw.QueryRow(sch(e2eFingerprint)).Scan(&fp))
	for _, f := range []string{sch(copyFile), sch(programFile)} {
		_, err := os.Stat(f)
		fp += fmt.Sprintf("|%s=%t", f, err == nil)
	}
	var role string
	require.NoError(t, e.db.QueryRowContext(appCtx, "SELECT current_user").Scan(&role))
	return fp + "|role=" + role
}

// mark runs a marker statement on the guarded connection and returns the
// backend's pid and the marker text.
func (e *e2eEnv) mark(t *testing.T, n int) (int, string) {
	t.Helper()
	marker := fmt.Sprintf("SELECT 'policy-e2e-marker-%d', pg_backend_pid()", n)
	var s string
	var pid int
	require.NoError(t, e.db.QueryRowContext(appCtx, marker).Scan(&s, &pid))
	return pid, marker
}

func (e *e2eEnv) lastQuery(t *testing.T, pid int) string {
	t.Helper()
	var q string
	require.NoError(t, e.raw.QueryRow("SELECT query FROM pg_stat_activity WHERE pid = $1", pid).Scan(&q), "backend %d is gone", pid)
	return q
}

func parseExpect(tok string) (policy.Effect, string) {
	code, rule, _ := strings.Cut(tok, ":")
	switch code {
	case "A":
		return policy.Allow, rule
	case "U":
		return policy.Audit, rule
	case "P":
		return policy.RequireApproval, rule
	case "D":
		return policy.Deny, rule
	}
	panic("bad expectation " + tok)
}

func (e *e2eEnv) run(t *testing.T, n int, who int, st e2eStatement) {
	t.Helper()
	ctx := context.Background()
	if id := e2eIDs[who].id; id != nil {
		ctx = identity.With(ctx, *id)
	}
	toks := strings.Fields(st.expect)
	require.Len(t, toks, len(e2eIDs), st.sql)
	query := sch(st.sql)
	want, rule := parseExpect(toks[who])
	label := fmt.Sprintf("case %d: %s runs %q", n, e2eIDs[who].name, query)

	if e.dirty {
		e.reset(t)
	}
	e.dirty = want == policy.Allow || want == policy.Audit
	before := e.witness(t)
	pid, marker := e.mark(t, n)
	if e.mem != nil {
		e.mem.Reset()
		e.reviewer.take()
	}

	var err error
	if st.query {
		var rows *sql.Rows
		rows, err = e.db.QueryContext(ctx, query, st.args...)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
	} else {
		_, err = e.db.ExecContext(ctx, query, st.args...)
	}

	var denied *guard.DeniedError
	switch want {
	case policy.Allow, policy.Audit:
		require.NoError(t, err, label)
	case policy.Deny, policy.RequireApproval:
		require.ErrorIs(t, err, guard.ErrDenied, label)
		require.True(t, errors.As(err, &denied), label)
		assert.Equal(t, string(want), denied.Effect, label)
		if rule != "" {
			assert.Equal(t, rule, denied.Rule, label)
		}
		if e.mem == nil && want == policy.RequireApproval {
			assert.Contains(t, denied.Error(), "no approver", label)
		}
		// Never reached the database: the marker is still the backend's
		// last statement, and nothing changed.
		assert.Equal(t, marker, e.lastQuery(t, pid), label)
		assert.Equal(t, before, e.witness(t), label)
	}
	if e.mem == nil {
		return // the drop-in path: no test reviewer or audit sink to look at
	}
	reqs := e.reviewer.take()
	if want == policy.RequireApproval {
		require.Len(t, reqs, 1, label)
		assert.Equal(t, denied.Rule, reqs[0].Rule, label)
		assert.Equal(t, "e2e-reviewer", denied.Reviewer, label)
	} else {
		assert.Empty(t, reqs, label)
	}

	// One audit record for the attempt, decided by this policy version.
	var recs []audit.Record
	for _, r := range e.mem.Records() {
		if r.Kind == audit.KindStatement && r.Statement == query {
			recs = append(recs, r)
		}
	}
	require.Len(t, recs, 1, label)
	require.NotNil(t, recs[0].Decision, label)
	assert.Equal(t, string(want), recs[0].Decision.Effect, label)
	assert.Equal(t, e.version, recs[0].Decision.Policy, label)
	if rule != "" {
		assert.Equal(t, rule, recs[0].Decision.Rule, label)
	}
}

// dropSchemaAtEnd leaves nothing behind, whether the test passes or not.
func dropSchemaAtEnd(t *testing.T, dsn string) {
	t.Cleanup(func() {
		raw, err := sql.Open("postgres", dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer raw.Close()
		if _, err := raw.Exec("DROP SCHEMA IF EXISTS " + e2eSchema + " CASCADE"); err != nil {
			t.Error(err)
		}
	})
}

func TestEndToEndDecisions(t *testing.T) {
	dsn := pgDSN(t)
	dropSchemaAtEnd(t, dsn)
	cases := 0
	t.Run("baseline", func(t *testing.T) {
		e := newE2E(t, dsn, policy.Baseline(), policy.Baseline().Version())
		for _, st := range baselineStatements {
			for who := range e2eIDs {
				cases++
				e.run(t, cases, who, st)
			}
		}
	})
	for _, env := range []string{"production", "staging"} {
		t.Run("team-"+env, func(t *testing.T) {
			p, err := policy.ParseFile("team.yaml", []byte(sch(teamPolicy)), policy.WithEnv(map[string]string{"env": env}))
			require.NoError(t, err)
			e := newE2E(t, dsn, p, p.Version())
			for _, st := range teamStatements[env] {
				for who := range e2eIDs {
					cases++
					e.run(t, cases, who, st)
				}
			}
		})
	}
	// The witnesses are not vacuous: in observe mode the same statements
	// run, and both witnesses see it.
	t.Run("observe-mode-lets-through", func(t *testing.T) {
		b := policy.Baseline().WithMode(policy.Observe)
		e := newE2E(t, dsn, b, b.Version())
		e.reset(t)
		before := e.witness(t)
		pid, marker := e.mark(t, 0)
		ctx := identity.With(context.Background(), *e2eIDs[0].id)
		truncate := sch("TRUNCATE policy_e2e.orders")
		_, err := e.db.ExecContext(ctx, truncate)
		require.NoError(t, err)
		assert.Equal(t, truncate, e.lastQuery(t, pid))
		assert.NotEqual(t, marker, e.lastQuery(t, pid))
		assert.NotEqual(t, before, e.witness(t))
		var rec *audit.Record
		for _, r := range e.mem.Records() {
			if r.Statement == truncate {
				rec = &r
			}
		}
		require.NotNil(t, rec)
		assert.Equal(t, "deny", rec.Decision.Effect)
		assert.Equal(t, "deny-truncate", rec.Decision.Rule)
		assert.True(t, rec.Decision.Observed)
	})

	t.Logf("%d decision cases end to end", cases)
	assert.GreaterOrEqual(t, cases, 100)
}

// TestReloadWhileRunning reloads the policy 100 times while 16 goroutines run
// statements through the guarded driver: every statement's audit record
// names one policy version, and the message that version's file gives.
func TestReloadWhileRunning(t *testing.T) {
	dsn := pgDSN(t)
	gen := func(n int) []byte {
		return fmt.Appendf(nil, "name: gen\nextends: baseline\nrules:\n  - name: tag\n    match: stmt.effect == 'read'\n    effect: audit\n    message: gen-%d\n", n)
	}
	path := t.TempDir() + "/policy.yaml"
	write := func(data []byte) {
		require.NoError(t, os.WriteFile(path+".tmp", data, 0o600))
		require.NoError(t, os.Rename(path+".tmp", path))
	}
	write(gen(0))
	store, err := policy.NewStore(path)
	require.NoError(t, err)
	var mu sync.Mutex
	versions := map[string]string{store.Policy().Version(): "gen-0"}
	var reloads atomic.Int32
	store.OnChange(func(_, p *policy.Policy) { reloads.Add(1) })

	mem := audit.NewMemory(0)
	name := fmt.Sprintf("guarded-postgres-policy-reload-%d", driverSeq.Add(1))
	guard.Register(name, &pq.Driver{}, guard.WithPolicy(store), guard.WithAuditor(mem), guard.WithoutMasking())
	db, err := sql.Open(name, dsn)
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(16)

	ctx, cancel := context.WithCancel(identity.With(context.Background(), identity.Identity{Subject: "billing", Kind: identity.Service}))
	var wg sync.WaitGroup
	var ran atomic.Int64
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var n int
				err := db.QueryRowContext(ctx, "SELECT $1::int", g*1_000_000+i).Scan(&n)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				ran.Add(1)
			}
		}()
	}
	for n := 1; n <= 100; n++ {
		write(gen(n))
		require.NoError(t, store.Reload())
		mu.Lock()
		versions[store.Policy().Version()] = fmt.Sprintf("gen-%d", n)
		mu.Unlock()
		for ran.Load() < int64(n*20) { // statements really run between reloads
			select {
			case err := <-errs:
				t.Fatal(err)
			case <-time.After(time.Millisecond):
			}
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	assert.EqualValues(t, 100, reloads.Load())

	used := map[string]int{}
	total := 0
	for _, r := range mem.Records() {
		if r.Kind != audit.KindStatement || r.Statement != "SELECT $1::int" {
			continue
		}
		require.NotNil(t, r.Decision)
		want, ok := versions[r.Decision.Policy]
		require.True(t, ok, "record decided by unknown version %q", r.Decision.Policy)
		if r.Outcome != nil && r.Outcome.Status == "cancelled" {
			continue
		}
		require.Equal(t, "audit", r.Decision.Effect)
		require.Equal(t, want, r.Decision.Message, "decision mixes policy versions")
		used[r.Decision.Policy]++
		total++
	}
	t.Logf("%d statements decided by %d policy versions", total, len(used))
	assert.GreaterOrEqual(t, total, 2000)
	assert.Greater(t, len(used), 50)
}

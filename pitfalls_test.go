package guard_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/mask"
	"github.com/guardedsql/guard/policy"
)

// A denying policy stops the statement before the database sees it, and a
// masker rewrites what comes back: both seams work end to end.
func TestSeams_DenyingPolicyAndRewritingMasker(t *testing.T) {
	raw := rawPQ(t)
	table := uniqueName("seam")
	_, err := raw.Exec(fmt.Sprintf(`CREATE TABLE %s (id int PRIMARY KEY, email text)`, table))
	require.NoError(t, err)
	t.Cleanup(func() { raw.Exec("DROP TABLE IF EXISTS " + table) })
	_, err = raw.Exec(fmt.Sprintf(`INSERT INTO %s VALUES (1, 'alice@example.com')`, table))
	require.NoError(t, err)

	mem := audit.NewMemory(0)
	pol := denyText("DROP")
	masker := maskColumns(func(driver.Value) driver.Value { return "***" }, "email")
	db := openPQ(t, guard.WithPolicy(pol), guard.WithMasker(masker), guard.WithAuditor(mem))
	ctx := identity.With(context.Background(), identity.Identity{Subject: "copilot-7", Kind: identity.Agent,
		OnBehalfOf: &identity.Identity{Subject: "alice@example.com", Kind: identity.Human}})

	_, err = db.ExecContext(ctx, "DROP TABLE "+table)
	require.ErrorIs(t, err, guard.ErrDenied)
	var de *guard.DeniedError
	require.ErrorAs(t, err, &de)
	require.Equal(t, "no-drop", de.Rule)
	// Proof by side effect: the table is still there with its row.
	var n int
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM "+table).Scan(&n))
	require.Equal(t, 1, n)

	var email string
	require.NoError(t, db.QueryRowContext(ctx, "SELECT email FROM "+table+" WHERE id = $1", 1).Scan(&email))
	require.Equal(t, "***", email)

	recs := statementRecords(mem, table)
	require.Len(t, recs, 2)
	require.Equal(t, "denied", recs[0].Outcome.Status)
	require.Equal(t, "no-drop", recs[0].Decision.Rule)
	require.Equal(t, "copilot-7", recs[0].Identity.Subject)
	require.Len(t, recs[0].OnBehalfOf, 1)
	require.Equal(t, "alice@example.com", recs[0].OnBehalfOf[0].Subject)
	require.Equal(t, "ok", recs[1].Outcome.Status)
	require.EqualValues(t, 1, recs[1].Outcome.RowsReturned)
	require.Len(t, recs[1].Masked, 1)
	require.EqualValues(t, 1, recs[1].Masked[0].Cells)
}

// Pitfall 1: go-sql-driver/mysql answers ErrSkip for a statement with
// arguments; database/sql then prepares and executes it. The guard must
// decide and audit that statement once, and hand ErrSkip back unwrapped.
func TestPitfall1_ErrSkipFallbackCheckedAndAuditedOnce(t *testing.T) {
	cfg, err := mysql.ParseDSN(mysqlDSN(t))
	require.NoError(t, err)
	cfg.InterpolateParams = false
	mc, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	mem := audit.NewMemory(0)
	pol := &countingPolicy{}
	db := sql.OpenDB(guard.NewConnector(mc, guard.WithPolicy(pol), guard.WithAuditor(mem)))
	defer db.Close()
	table := uniqueName("skip")
	_, err = db.Exec("CREATE TABLE " + table + " (id INT PRIMARY KEY, v TEXT)")
	require.NoError(t, err)
	defer db.Exec("DROP TABLE " + table)

	pol.calls.Store(0)
	res, err := db.Exec("INSERT INTO "+table+" (id, v) VALUES (?, ?)", 1, "one")
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.EqualValues(t, 1, n)
	require.EqualValues(t, 1, pol.calls.Load(), "the statement must be decided once")
	recs := statementRecords(mem, "INSERT INTO "+table)
	require.Len(t, recs, 1, "the statement must be audited once")
	require.Equal(t, "ok", recs[0].Outcome.Status)
	require.EqualValues(t, 1, recs[0].Outcome.RowsAffected)

	pol.calls.Store(0)
	var v string
	require.NoError(t, db.QueryRow("SELECT v FROM "+table+" WHERE id = ?", 1).Scan(&v))
	require.Equal(t, "one", v)
	require.EqualValues(t, 1, pol.calls.Load())
	require.Len(t, statementRecords(mem, "SELECT v FROM "+table), 1)
}

// Pitfall 2: database/sql retries a statement whose error is ErrBadConn. A
// denial must never match it, so the statement is decided once and not retried.
func TestPitfall2_DenialIsNeverErrBadConn(t *testing.T) {
	pol := denyText("PG_SLEEP")
	db := openPQ(t, guard.WithPolicy(pol))
	_, err := db.Exec("SELECT pg_sleep(0)")
	require.ErrorIs(t, err, guard.ErrDenied)
	require.NotErrorIs(t, err, driver.ErrBadConn)
	require.EqualValues(t, 1, pol.calls.Load(), "a denial must not be retried by database/sql")

	_, err = db.Query("SELECT pg_sleep(0)")
	require.ErrorIs(t, err, guard.ErrDenied)
	require.EqualValues(t, 2, pol.calls.Load())
}

// Pitfall 3: lib/pq reuses its read buffer; values in dest alias it. A
// masker writes new values into dest, and the clear columns of later rows
// must not be disturbed by what was written for earlier ones.
func TestPitfall3_MaskingWritesFreshValuesOverAliasedBuffers(t *testing.T) {
	masker := maskColumns(func(v driver.Value) driver.Value {
		b, _ := v.([]byte)
		return append([]byte("masked:"), byte('0'+len(b)%10))
	}, "secret")
	db := openPQ(t, guard.WithMasker(masker))
	rows, err := db.Query(`SELECT g AS id, decode(md5(g::text), 'hex') AS secret, md5(g::text)::bytea AS clear
		FROM generate_series(1, 2000) g`)
	require.NoError(t, err)
	defer rows.Close()
	var kept [][]byte
	for rows.Next() {
		var id int
		var secret, clear []byte
		require.NoError(t, rows.Scan(&id, &secret, &clear))
		require.Equal(t, "masked:6", string(secret))
		require.Equal(t, md5hex(id), string(clear), "row %d", id)
		kept = append(kept, secret)
	}
	require.NoError(t, rows.Err())
	for _, k := range kept {
		require.Equal(t, "masked:6", string(k), "an earlier masked value was overwritten")
	}
}

// Pitfall 4: when ctx is cancelled mid-iteration database/sql closes the
// rows from its own goroutine. The guard's hooks are race-free (run with
// -race) and the statement still gets exactly one record.
func TestPitfall4_RowsClosedFromAnotherGoroutineOnCancel(t *testing.T) {
	mem := audit.NewMemory(0)
	masker := maskColumns(func(driver.Value) driver.Value { return int64(0) }, "g")
	db := openPQ(t, guard.WithAuditor(mem), guard.WithMasker(masker))
	for i := 0; i < 8; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		q := fmt.Sprintf("SELECT g, %d AS run FROM generate_series(1, 20000) g", i)
		rows, err := db.QueryContext(ctx, q)
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); time.Sleep(time.Millisecond); cancel() }()
		n := 0
		for rows.Next() {
			var g, run int64
			if err := rows.Scan(&g, &run); err == nil {
				require.Zero(t, g)
			}
			n++
		}
		wg.Wait()
		rows.Close()
		recs := statementRecords(mem, q)
		require.Len(t, recs, 1, "run %d: exactly one record", i)
		require.Contains(t, []string{"ok", "cancelled", "error"}, recs[0].Outcome.Status)
	}
}

// Pitfall 5: a masked column still scans into the Go type the caller uses.
func TestPitfall5_TypedScansOnMaskedColumns(t *testing.T) {
	fixed := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	masker := &funcMasker{f: func(rs mask.ResultSet) mask.Plan {
		return &columnPlan{idx: []int{0, 1, 2, 3}, names: rs.Columns, repl: func(v driver.Value) driver.Value {
			switch v.(type) {
			case int64:
				return int64(0)
			case time.Time:
				return fixed
			case []byte:
				return []byte("xxxx")
			default:
				return "xxxx"
			}
		}}
	}}
	db := openPQ(t, guard.WithMasker(masker))
	var (
		n  int64
		ts time.Time
		b  []byte
		ns sql.NullString
	)
	err := db.QueryRow(`SELECT 42::int8, now(), 'abc'::bytea, 'text'::text`).Scan(&n, &ts, &b, &ns)
	require.NoError(t, err)
	require.Zero(t, n)
	require.True(t, ts.Equal(fixed))
	require.Equal(t, "xxxx", string(b))
	require.Equal(t, sql.NullString{String: "xxxx", Valid: true}, ns)
}

// Pitfall 6: one query string may return several result sets (lib/pq's
// simple protocol). The masking plan is rebuilt for each, from its own columns.
func TestPitfall6_SeveralResultSetsEachGetTheirPlan(t *testing.T) {
	masker := maskColumns(func(driver.Value) driver.Value { return "***" }, "secret")
	mem := audit.NewMemory(0)
	db := openPQ(t, guard.WithMasker(masker), guard.WithAuditor(mem))
	rows, err := db.Query(`SELECT 1 AS a; SELECT 'hunter2' AS secret, 2 AS b`)
	require.NoError(t, err)
	defer rows.Close()
	require.True(t, rows.Next())
	var a int
	require.NoError(t, rows.Scan(&a))
	require.Equal(t, 1, a)
	require.False(t, rows.Next())
	require.True(t, rows.NextResultSet())
	require.True(t, rows.Next())
	var secret string
	var b int
	require.NoError(t, rows.Scan(&secret, &b))
	require.Equal(t, "***", secret)
	require.Equal(t, 2, b)
	require.NoError(t, rows.Close())
	require.EqualValues(t, 2, masker.plans.Load())
	recs := statementRecords(mem, "hunter2")
	require.Len(t, recs, 1)
	require.EqualValues(t, 2, recs[0].Outcome.RowsReturned)
}

// Pitfall 7: a prepared statement is decided each time it runs, with the
// identity of the executing context, not the preparing one.
func TestPitfall7_PreparedStatementDecidedWithExecutingIdentity(t *testing.T) {
	pol := &countingPolicy{f: func(in *policy.Input) policy.Decision {
		if in.Identity.Subject == "mallory" {
			return policy.Decision{Effect: policy.Deny, Rule: "no-mallory"}
		}
		return policy.Decision{Effect: policy.Allow}
	}}
	mem := audit.NewMemory(0)
	db := openPQ(t, guard.WithPolicy(pol), guard.WithAuditor(mem))
	db.SetMaxOpenConns(4)
	alice := identity.With(context.Background(), identity.Identity{Subject: "alice", Kind: identity.Human})
	mallory := identity.With(context.Background(), identity.Identity{Subject: "mallory", Kind: identity.Agent})
	st, err := db.PrepareContext(alice, "SELECT $1::int + 1")
	require.NoError(t, err)
	defer st.Close()
	// Hold connections so database/sql re-prepares on another one.
	var conns []*sql.Conn
	for i := 0; i < 3; i++ {
		c, err := db.Conn(context.Background())
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	var n int
	require.NoError(t, st.QueryRowContext(alice, 1).Scan(&n))
	require.Equal(t, 2, n)
	err = st.QueryRowContext(mallory, 1).Scan(&n)
	require.ErrorIs(t, err, guard.ErrDenied)
	_, err = st.ExecContext(mallory, 1)
	require.ErrorIs(t, err, guard.ErrDenied)
	recs := statementRecords(mem, "SELECT $1::int + 1")
	require.Len(t, recs, 3)
	require.Equal(t, "alice", recs[0].Identity.Subject)
	require.Equal(t, "mallory", recs[1].Identity.Subject)
	require.Equal(t, "denied", recs[1].Outcome.Status)
}

// Pitfall 8: lib/pq's COPY FROM STDIN is a Prepare followed by one Exec per
// row and a final Exec; it is one statement, decided and audited once.
func TestPitfall8_CopyFromStdinDecidedAndAuditedOnce(t *testing.T) {
	raw := rawPQ(t)
	table := uniqueName("copy")
	_, err := raw.Exec("CREATE TABLE " + table + " (id int, name text)")
	require.NoError(t, err)
	t.Cleanup(func() { raw.Exec("DROP TABLE IF EXISTS " + table) })

	mem := audit.NewMemory(0)
	pol := &countingPolicy{}
	db := openPQ(t, guard.WithPolicy(pol), guard.WithAuditor(mem))
	tx, err := db.Begin()
	require.NoError(t, err)
	st, err := tx.Prepare(pq.CopyIn(table, "id", "name"))
	require.NoError(t, err)
	for i := 0; i < 10000; i++ {
		_, err = st.Exec(i, fmt.Sprintf("row %d", i))
		require.NoError(t, err)
	}
	res, err := st.Exec()
	require.NoError(t, err)
	require.NoError(t, st.Close())
	require.NoError(t, tx.Commit())
	n, _ := res.RowsAffected()
	require.EqualValues(t, 10000, n)
	require.EqualValues(t, 1, pol.calls.Load())
	recs := statementRecords(mem, "COPY")
	require.Len(t, recs, 1)
	require.EqualValues(t, 10000, recs[0].Outcome.RowsAffected)
	var count int
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM "+table).Scan(&count))
	require.Equal(t, 10000, count)

	// A denied COPY never starts: lib/pq sends COPY at Prepare, so the
	// decision is made there and the driver is never called.
	deny := denyText("COPY")
	denyMem := audit.NewMemory(0)
	db2 := openPQ(t, guard.WithPolicy(deny), guard.WithAuditor(denyMem))
	tx2, err := db2.Begin()
	require.NoError(t, err)
	defer tx2.Rollback()
	_, err = tx2.Prepare(pq.CopyIn(table, "id", "name"))
	require.ErrorIs(t, err, guard.ErrDenied)
	require.Len(t, statementRecords(denyMem, "COPY"), 1)
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM "+table).Scan(&count))
	require.Equal(t, 10000, count)
}

// Pitfall 9: db.Driver(), sql.Conn.Raw and the legacy context-free driver
// methods are no way around the guard.
func TestPitfall9_NoWayAroundTheGuard(t *testing.T) {
	raw := rawPQ(t)
	table := uniqueName("around")
	_, err := raw.Exec("CREATE TABLE " + table + " (id int)")
	require.NoError(t, err)
	t.Cleanup(func() { raw.Exec("DROP TABLE IF EXISTS " + table) })
	dropSQL := "DROP TABLE " + table

	pol := denyText("DROP")
	db := openPQ(t, guard.WithPolicy(pol))
	c, err := db.Conn(context.Background())
	require.NoError(t, err)
	defer c.Close()
	err = c.Raw(func(dc any) error {
		if _, err := dc.(driver.Execer).Exec(dropSQL, nil); !errors.Is(err, guard.ErrDenied) { //nolint:staticcheck
			return fmt.Errorf("Raw Execer.Exec: %v", err)
		}
		if _, err := dc.(driver.Queryer).Query(dropSQL, nil); !errors.Is(err, guard.ErrDenied) { //nolint:staticcheck
			return fmt.Errorf("Raw Queryer.Query: %v", err)
		}
		if _, err := dc.(driver.ExecerContext).ExecContext(context.Background(), dropSQL, nil); !errors.Is(err, guard.ErrDenied) {
			return fmt.Errorf("Raw ExecContext: %v", err)
		}
		st, err := dc.(driver.Conn).Prepare(dropSQL)
		if err != nil {
			return err
		}
		defer st.Close()
		if _, err := st.Exec(nil); !errors.Is(err, guard.ErrDenied) { //nolint:staticcheck
			return fmt.Errorf("Raw Stmt.Exec: %v", err)
		}
		return nil
	})
	require.NoError(t, err)

	// db.Driver() opens guarded connections too.
	dc, err := db.Driver().Open(pgDSN(t))
	require.NoError(t, err)
	_, err = dc.(driver.ExecerContext).ExecContext(context.Background(), dropSQL, nil)
	require.ErrorIs(t, err, guard.ErrDenied)
	require.NoError(t, dc.Close())

	// The registered driver behaves the same.
	gdb, err := sql.Open("guarded-postgres", pgDSN(t))
	require.NoError(t, err)
	defer gdb.Close()
	gc, err := gdb.Driver().Open(pgDSN(t))
	require.NoError(t, err)
	_, err = gc.(driver.Execer).Exec("SELECT 1", nil) //nolint:staticcheck
	require.NoError(t, err)
	gc.Close()

	var exists bool
	require.NoError(t, raw.QueryRow("SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists))
	require.True(t, exists, "the table must survive every attempt")

	// Closing the DB closes the connector: no statement runs after it.
	require.NoError(t, db.Close())
	_, err = db.Exec("SELECT 1")
	require.Error(t, err)
}

// Pitfall 10: argument conversion stays the wrapped driver's: pgx takes Go
// slices natively and lib/pq turns them into arrays.
func TestPitfall10_NamedValueCheckerPassedThrough(t *testing.T) {
	db := openPQ(t)
	var s string
	require.NoError(t, db.QueryRow("SELECT $1::int[]::text", []int64{1, 2, 3}).Scan(&s))
	require.Equal(t, "{1,2,3}", s)
	st, err := db.Prepare("SELECT $1::int[]::text")
	require.NoError(t, err)
	require.NoError(t, st.QueryRow([]int64{4, 5}).Scan(&s))
	require.Equal(t, "{4,5}", s)
	st.Close()

	pc := stdlib.GetConnector(*mustPgxConfig(t))
	pdb := sql.OpenDB(guard.NewConnector(pc))
	defer pdb.Close()
	require.NoError(t, pdb.QueryRow("SELECT $1::int8[]", []int64{7, 8}).Scan(&s))
	require.Equal(t, "{7,8}", s)
	var sum int64
	require.NoError(t, pdb.QueryRow("SELECT $1::int8 + $2::int8", uint32(5), int16(6)).Scan(&sum))
	require.EqualValues(t, 11, sum)
	require.True(t, strings.HasPrefix(s, "{"))
}

package guard_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
)

// confScenario is one thing an application does with database/sql. run returns
// everything the application could observe; the runner compares raw with
// guarded. Scenarios also check the raw facts they rely on, so that a driver
// behaving oddly on both sides cannot pass unnoticed.
type confScenario struct {
	name string
	// families limits the scenario to drivers that have the feature; nil
	// means every driver.
	families map[string]bool
	run      func(s *confSession) any
}

func onlyFamilies(families ...string) map[string]bool {
	m := map[string]bool{}
	for _, f := range families {
		m[f] = true
	}
	return m
}

func conformanceScenarios() []confScenario {
	return []confScenario{
		{name: "TypeRoundTrip", run: typeRoundTrip},
		{name: "SessionTimeZone", families: onlyFamilies(famLibPQ, famPgx, famMySQL), run: sessionTimeZone},
		{name: "TransactionRollback", run: transactionRollback},
		{name: "PreparedStatementShared32", run: preparedShared},
		{name: "CancelMidIteration", run: cancelMidIteration},
		{name: "SeveralResultSets", run: severalResultSets},
		{name: "CopyFromStdin10000", families: onlyFamilies(famLibPQ), run: copyIn},
		{name: "ErrNoRows", run: errNoRows},
		{name: "DriverErrors", run: driverErrors},
		{name: "ExecResults", run: execResults},
		{name: "NamedArgs", run: namedArgs},
		{name: "QueryTimeout", run: queryTimeout},
		{name: "LargeResultRawBytes", run: largeResultRawBytes},
	}
}

// Values every round trip uses. The zones are fixed offsets so that no
// tzdata is needed; +05:30 catches code that assumes whole hours.
var (
	tzIn = time.Date(2024, 3, 10, 1, 30, 15, 123456000, time.FixedZone("IST", 5*3600+1800))
	tsIn = time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	dIn  = time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	tz3  = time.Date(1970, 1, 1, 0, 0, 1, 0, time.FixedZone("", -9*3600))
)

const (
	numericIn = "12345678901234567890.0123456789"
	textIn    = "héllo, 世界 'quoted' \\ back\nslash"
	jsonIn    = `{"a": [1, 2, {"b": null}], "c": "ü"}`
)

var bytesIn = []byte{0, 1, 2, 0x27, 0x5c, 0xfe, 0xff}

func typeRoundTrip(s *confSession) any {
	t := s.t
	var create, insert string
	var row1, row2, row3 []any
	switch s.tg.dialect {
	case "postgres":
		create = `CREATE TABLE types (id int PRIMARY KEY, i bigint, n numeric(30,10), f double precision,
			s text, b bytea, tz timestamptz, ts timestamp, d date, j jsonb, ok boolean,
			arr bigint[], arr2 bigint[], u uuid, iv interval)`
		insert = `INSERT INTO types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`
		row1 = []any{1, int64(math.MaxInt64), numericIn, 3.25, textIn, bytesIn, tzIn, tsIn, dIn, jsonIn, true,
			pq.Array([]int64{1, -2, 3}), []int64{4, 5}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "1 day 02:03:04"}
		row2 = []any{2, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}
		row3 = []any{3, int64(math.MinInt64), "-0.0000000001", -0.5, "", []byte{}, tz3, tz3, tz3, `[]`, false,
			pq.Array([]int64{}), []int64{}, "00000000-0000-0000-0000-000000000000", "-00:00:01"}
	case "mysql":
		create = `CREATE TABLE types (id int PRIMARY KEY, i bigint, n decimal(30,10), f double,
			s text, b blob, tz timestamp(6) NULL, ts datetime(6), d date, j json, ok boolean,
			u bigint unsigned, e enum('x','y'))`
		insert = `INSERT INTO types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
		// uint64 above MaxInt64 is refused by database/sql's default
		// converter: it only works if the guard hands the driver's own
		// NamedValueChecker through (DESIGN.md pitfall 10).
		row1 = []any{1, int64(math.MaxInt64), numericIn, 3.25, textIn, bytesIn, tzIn, tsIn, dIn, jsonIn, true,
			uint64(math.MaxUint64), "y"}
		row2 = []any{2, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}
		row3 = []any{3, int64(math.MinInt64), "-0.0000000001", -0.5, "", []byte{}, tz3.AddDate(30, 0, 0), tz3, tz3, `[]`, false,
			uint64(0), "x"}
	case "sqlite":
		create = `CREATE TABLE types (id integer PRIMARY KEY, i integer, n numeric, f real,
			s text, b blob, tz datetime, ts timestamp, d date, j text, ok boolean)`
		insert = `INSERT INTO types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
		row1 = []any{1, int64(math.MaxInt64), numericIn, 3.25, textIn, bytesIn, tzIn, tsIn, dIn, jsonIn, true}
		row2 = []any{2, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil}
		row3 = []any{3, int64(math.MinInt64), "-0.0000000001", -0.5, "", []byte{}, tz3, tz3, tz3, `[]`, false}
	}
	s.exec(create)
	for _, r := range [][]any{row1, row2, row3} {
		s.exec(insert, r...)
	}
	all := s.query("SELECT * FROM types ORDER BY id")
	require.Len(t, all, 1)
	require.Len(t, all[0].Rows, 3)

	// Typed scans of the values back: what most applications do.
	var (
		i  int64
		n  string
		f  float64
		st string
		b  []byte
		tz time.Time
		j  string
		ok bool
	)
	require.NoError(t, s.db.QueryRowContext(s.ctx, s.q("SELECT i, n, f, s, b, tz, j, ok FROM types WHERE id = $1"), 1).
		Scan(&i, &n, &f, &st, &b, &tz, &j, &ok))
	require.Equal(t, int64(math.MaxInt64), i)
	if s.tg.dialect != "sqlite" { // SQLite keeps NUMERIC as a float
		require.Equal(t, numericIn, n)
	}
	require.Equal(t, 3.25, f)
	require.Equal(t, textIn, st)
	require.Equal(t, bytesIn, b)
	require.True(t, tz.Equal(tzIn), "timestamp with zone: got %v, want the instant %v", tz, tzIn)
	require.JSONEq(t, jsonIn, j)
	require.True(t, ok)
	typed := []any{i, n, f, st, b, tz, j, ok}

	var arr, arr2 []int64
	if s.tg.dialect == "postgres" {
		require.NoError(t, s.db.QueryRowContext(s.ctx, "SELECT arr, arr2 FROM types WHERE id = 1").
			Scan(pq.Array(&arr), pq.Array(&arr2)))
		require.Equal(t, []int64{1, -2, 3}, arr)
		require.Equal(t, []int64{4, 5}, arr2)
	}

	var (
		ni  sql.NullInt64
		nn  sql.NullString
		nf  sql.NullFloat64
		ns  sql.NullString
		nb  []byte
		ntz sql.NullTime
		nok sql.NullBool
	)
	require.NoError(t, s.db.QueryRowContext(s.ctx, s.q("SELECT i, n, f, s, b, tz, ok FROM types WHERE id = $1"), 2).
		Scan(&ni, &nn, &nf, &ns, &nb, &ntz, &nok))
	require.False(t, ni.Valid || nn.Valid || nf.Valid || ns.Valid || ntz.Valid || nok.Valid, "NULLs must scan as invalid")
	require.Nil(t, nb)

	var eb []byte
	var es string
	require.NoError(t, s.db.QueryRowContext(s.ctx, s.q("SELECT b, s FROM types WHERE id = $1"), 3).Scan(&eb, &es))
	if s.tg.family != famSQLite { // modernc.org/sqlite returns an empty blob as nil
		require.Equal(t, []byte{}, eb, "an empty blob is not NULL")
	}
	require.Equal(t, "", es)

	return []any{all, typed, arr, arr2, ni, nn, nf, ns, nb, ntz, nok, eb}
}

// sessionTimeZone sets a session's time zone on one connection and reads a
// time with zone back through it.
func sessionTimeZone(s *confSession) any {
	t := s.t
	conn, err := s.db.Conn(s.ctx)
	require.NoError(t, err)
	defer conn.Close()
	var sets []confResultSet
	switch s.tg.dialect {
	case "postgres":
		_, err = conn.ExecContext(s.ctx, "SET TIME ZONE 'Asia/Tokyo'")
		require.NoError(t, err)
		rows, err := conn.QueryContext(s.ctx, "SELECT $1::timestamptz AS tz, ($1::timestamptz)::text AS txt, current_setting('TimeZone') AS zone", tzIn)
		require.NoError(t, err)
		sets = collectSets(t, rows)
		require.Equal(t, "2024-03-10 05:00:15.123456+09", fmt.Sprint(cellText(sets[0].Rows[0][1])))
	case "mysql":
		_, err = conn.ExecContext(s.ctx, "SET time_zone = '+09:00'")
		require.NoError(t, err)
		_, err = conn.ExecContext(s.ctx, "CREATE TABLE tzt (t timestamp(6) NULL)")
		require.NoError(t, err)
		_, err = conn.ExecContext(s.ctx, "INSERT INTO tzt VALUES ('2024-03-10 05:00:15.123456')")
		require.NoError(t, err)
		rows, err := conn.QueryContext(s.ctx, "SELECT t, CAST(t AS CHAR) AS txt, UNIX_TIMESTAMP(t) AS epoch, @@session.time_zone AS zone FROM tzt")
		require.NoError(t, err)
		sets = collectSets(t, rows)
		require.Equal(t, "1710014415.123456", cellText(sets[0].Rows[0][2]))
	}
	return sets
}

func cellText(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

func transactionRollback(s *confSession) any {
	t := s.t
	s.exec("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
	s.exec("INSERT INTO accounts VALUES (1, 100), (2, 50)")
	balances := func() []confResultSet { return s.query("SELECT id, balance FROM accounts ORDER BY id") }
	before := balances()

	// A transfer rolled back leaves nothing behind, though the transaction saw it.
	tx, err := s.db.BeginTx(s.ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(s.ctx, s.q("UPDATE accounts SET balance = balance - $1 WHERE id = $2"), 30, 1)
	require.NoError(t, err)
	_, err = tx.ExecContext(s.ctx, s.q("UPDATE accounts SET balance = balance + $1 WHERE id = $2"), 30, 2)
	require.NoError(t, err)
	rows, err := tx.QueryContext(s.ctx, "SELECT id, balance FROM accounts ORDER BY id")
	require.NoError(t, err)
	inTx := collectSets(t, rows)
	require.NoError(t, tx.Rollback())
	afterRollback := balances()
	require.Equal(t, before, afterRollback)
	require.NotEqual(t, before, inTx)

	// The same transfer committed stays.
	tx, err = s.db.BeginTx(s.ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(s.ctx, s.q("UPDATE accounts SET balance = balance - $1 WHERE id = $2"), 30, 1)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	afterCommit := balances()

	// A failing statement inside a transaction, then rollback.
	tx, err = s.db.BeginTx(s.ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(s.ctx, "INSERT INTO accounts VALUES (3, 1)")
	require.NoError(t, err)
	_, dupErr := tx.ExecContext(s.ctx, "INSERT INTO accounts VALUES (1, 1)")
	require.Error(t, dupErr)
	_, nextErr := tx.ExecContext(s.ctx, "INSERT INTO accounts VALUES (4, 1)")
	require.NoError(t, tx.Rollback())
	afterFailed := balances()
	require.Equal(t, afterCommit, afterFailed)

	// A read-only transaction refuses a write where the database supports it.
	var roBegin, roWrite confErr
	tx, err = s.db.BeginTx(s.ctx, &sql.TxOptions{ReadOnly: true})
	roBegin = inspectErr(err)
	if err == nil {
		_, err = tx.ExecContext(s.ctx, "UPDATE accounts SET balance = 0")
		roWrite = inspectErr(err)
		require.NoError(t, tx.Rollback())
	}

	// A transaction whose context ends is rolled back by database/sql.
	ctx, cancel := context.WithCancel(s.ctx)
	tx, err = s.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "UPDATE accounts SET balance = 0")
	require.NoError(t, err)
	cancel()
	commitErr := tx.Commit()
	require.Error(t, commitErr, "commit after the context ended must fail")
	afterCancel := balances()
	require.Equal(t, afterCommit, afterCancel)

	return []any{before, inTx, afterRollback, afterCommit, inspectErr(dupErr), inspectErr(nextErr), afterFailed, roBegin, roWrite, afterCancel}
}

// preparedShared shares one prepared SELECT and one prepared INSERT among 32
// goroutines on a pool of 8 connections, so database/sql re-prepares them on
// connections other than the first.
func preparedShared(s *confSession) any {
	t := s.t
	s.exec("CREATE TABLE kv (id int PRIMARY KEY, v text NOT NULL)")
	tx, err := s.db.BeginTx(s.ctx, nil)
	require.NoError(t, err)
	fill, err := tx.PrepareContext(s.ctx, s.q("INSERT INTO kv (id, v) VALUES ($1, $2)"))
	require.NoError(t, err)
	for id := 0; id < 100; id++ {
		_, err := fill.ExecContext(s.ctx, id, fmt.Sprintf("v%d", id))
		require.NoError(t, err)
	}
	require.NoError(t, fill.Close())
	require.NoError(t, tx.Commit())

	s.db.SetMaxOpenConns(8)
	sel, err := s.db.PrepareContext(s.ctx, s.q("SELECT v FROM kv WHERE id = $1"))
	require.NoError(t, err)
	defer sel.Close()
	ins, err := s.db.PrepareContext(s.ctx, s.q("INSERT INTO kv (id, v) VALUES ($1, $2)"))
	require.NoError(t, err)
	defer ins.Close()

	const goroutines, reads = 32, 8
	var got [goroutines][reads]string
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range reads {
				id := (g*13 + k*7) % 100
				if err := sel.QueryRowContext(s.ctx, id).Scan(&got[g][k]); err != nil {
					errs[g] = fmt.Errorf("goroutine %d read %d: %w", g, id, err)
					return
				}
			}
			if _, err := ins.ExecContext(s.ctx, 1000+g, fmt.Sprintf("g%d", g)); err != nil {
				errs[g] = fmt.Errorf("goroutine %d insert: %w", g, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	for g := range goroutines {
		for k := range reads {
			require.Equal(t, fmt.Sprintf("v%d", (g*13+k*7)%100), got[g][k])
		}
	}
	var n, sum int64
	require.NoError(t, s.db.QueryRowContext(s.ctx, "SELECT count(*), sum(id) FROM kv WHERE id >= 1000").Scan(&n, &sum))
	require.Equal(t, int64(goroutines), n)
	return []any{got, n, sum, s.query("SELECT id, v FROM kv ORDER BY id")}
}

// cancelMidIteration cancels the context while rows are being read: the
// iteration stops with the context's error and the pool stays usable.
func cancelMidIteration(s *confSession) any {
	t := s.t
	var query string
	switch s.tg.dialect {
	case "postgres":
		query = "SELECT g FROM generate_series(1, 1000000) AS g"
	default:
		query = "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 300000) SELECT n FROM seq"
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, query)
	require.NoError(t, err)
	var first []int64
	for len(first) < 10 && rows.Next() {
		var n int64
		require.NoError(t, rows.Scan(&n))
		first = append(first, n)
	}
	cancel()
	// How many more rows arrive before database/sql closes the rows is a
	// race by design; only the end matters.
	more := 0
	for rows.Next() {
		more++
	}
	iterErr := rows.Err()
	// Whether database/sql's own goroutine closes the rows first (Close then
	// returns nil) or the driver's Next fails first and Close drains a
	// cancelled connection (go-sql-driver/mysql then returns the
	// cancellation) is a race in the driver, raw or guarded alike.
	if err := rows.Close(); err != nil {
		require.ErrorIs(t, err, context.Canceled)
	}
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, first)
	stoppedEarly := more < 290000
	require.True(t, stoppedEarly, "iteration went on for %d rows after the cancel", more)
	require.ErrorIs(t, iterErr, context.Canceled)

	var one int
	require.NoError(t, s.db.QueryRowContext(s.ctx, "SELECT 1").Scan(&one))
	return []any{first, stoppedEarly, one}
}

// severalResultSets sends two SELECTs in one string: lib/pq runs it with the
// simple protocol, go-sql-driver/mysql with multiStatements=true.
func severalResultSets(s *confSession) any {
	t := s.t
	rows, err := s.db.QueryContext(s.ctx, "SELECT 1 AS one; SELECT 'two' AS two, 3 AS three")
	var sets []confResultSet
	var iterErr error
	if err == nil {
		sets, iterErr = collectSetsErr(rows)
	}
	if s.tg.multiResultSets {
		require.NoError(t, err)
		require.NoError(t, iterErr)
		require.Len(t, sets, 2)
		require.Equal(t, "two", cellText(sets[1].Rows[0][0]))
	}
	// Several statements that write, through Exec.
	_, execErr := s.db.ExecContext(s.ctx, "CREATE TABLE ms (id int); INSERT INTO ms VALUES (1), (2)")
	var n int64
	countErr := s.db.QueryRowContext(s.ctx, "SELECT count(*) FROM ms").Scan(&n)
	if s.tg.multiResultSets {
		require.NoError(t, execErr)
		require.Equal(t, int64(2), n)
	}
	return []any{inspectErr(err), sets, inspectErr(iterErr), inspectErr(execErr), inspectErr(countErr), n}
}

// collectSetsErr is collectSets for drivers that may fail half-way.
func collectSetsErr(rows *sql.Rows) (sets []confResultSet, err error) {
	defer rows.Close()
	for {
		var rs confResultSet
		cols, err := rows.Columns()
		if err != nil {
			return sets, err
		}
		for _, c := range cols {
			rs.Columns = append(rs.Columns, confColumn{Name: c})
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return sets, err
			}
			rs.Rows = append(rs.Rows, vals)
		}
		if err := rows.Err(); err != nil {
			return sets, err
		}
		sets = append(sets, rs)
		if !rows.NextResultSet() {
			return sets, rows.Err()
		}
	}
}

// copyIn loads 10,000 rows with lib/pq's COPY FROM STDIN.
func copyIn(s *confSession) any {
	t := s.t
	const n = 10000
	s.exec("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), note text)")
	tx, err := s.db.BeginTx(s.ctx, nil)
	require.NoError(t, err)
	stmt, err := tx.PrepareContext(s.ctx, pq.CopyIn("items", "id", "name", "price", "note"))
	require.NoError(t, err)
	for i := range n {
		var note any
		if i%10 == 0 {
			note = "tab\there, newline\nthere, backslash \\"
		}
		_, err := stmt.ExecContext(s.ctx, i, fmt.Sprintf("item-%05d", i), fmt.Sprintf("%d.%02d", i/100, i%100), note)
		require.NoError(t, err)
	}
	res, err := stmt.ExecContext(s.ctx)
	require.NoError(t, err)
	affected, affErr := res.RowsAffected()
	require.NoError(t, stmt.Close())
	require.NoError(t, tx.Commit())

	var count, sum int64
	var total, digest string
	require.NoError(t, s.db.QueryRowContext(s.ctx,
		`SELECT count(*), sum(id), sum(price)::text, md5(string_agg(name || coalesce(note, '-'), ',' ORDER BY id)) FROM items`).
		Scan(&count, &sum, &total, &digest))
	require.Equal(t, int64(n), count)
	require.Equal(t, int64(n*(n-1)/2), sum)
	return []any{affected, inspectErr(affErr), count, sum, total, digest}
}

func errNoRows(s *confSession) any {
	t := s.t
	s.exec("CREATE TABLE one (id int PRIMARY KEY, v text)")
	s.exec("INSERT INTO one VALUES (1, 'a')")
	var v string
	found := s.db.QueryRowContext(s.ctx, s.q("SELECT v FROM one WHERE id = $1"), 1).Scan(&v)
	require.NoError(t, found)

	direct := s.db.QueryRowContext(s.ctx, s.q("SELECT v FROM one WHERE id = $1"), 2).Scan(&v)
	stmt, err := s.db.PrepareContext(s.ctx, s.q("SELECT v FROM one WHERE id = $1"))
	require.NoError(t, err)
	prepared := stmt.QueryRowContext(s.ctx, 3).Scan(&v)
	require.NoError(t, stmt.Close())
	tx, err := s.db.BeginTx(s.ctx, nil)
	require.NoError(t, err)
	inTx := tx.QueryRowContext(s.ctx, "SELECT v FROM one WHERE id = 4").Scan(&v)
	require.NoError(t, tx.Rollback())

	for _, err := range []error{direct, prepared, inTx} {
		require.ErrorIs(t, err, sql.ErrNoRows)
	}
	return []any{v, inspectErr(direct), inspectErr(prepared), inspectErr(inTx)}
}

// driverErrors provokes the database's own errors on every path and reads
// them with errors.As into the driver's error type.
func driverErrors(s *confSession) any {
	t := s.t
	s.exec("CREATE TABLE uniq (id int PRIMARY KEY)")
	s.exec("INSERT INTO uniq VALUES (1)")

	_, dup := s.db.ExecContext(s.ctx, s.q("INSERT INTO uniq VALUES ($1)"), 1)
	_, syntax := s.db.QueryContext(s.ctx, "SELEC 1")
	_, prep := s.db.PrepareContext(s.ctx, "SELECT nosuch FROM uniq")
	_, missing := s.db.ExecContext(s.ctx, "INSERT INTO nosuchtable VALUES (1)")
	tx, err := s.db.BeginTx(s.ctx, nil)
	require.NoError(t, err)
	_, inTx := tx.ExecContext(s.ctx, "INSERT INTO uniq VALUES (1)")
	require.NoError(t, tx.Rollback())

	got := []confErr{inspectErr(dup), inspectErr(syntax), inspectErr(prep), inspectErr(missing), inspectErr(inTx)}
	for i, e := range got {
		require.True(t, e.AsDriver, "error %d (%s) must be the driver's own type through errors.As", i, e.Text)
	}
	var want []string
	switch s.tg.dialect {
	case "postgres":
		want = []string{"23505", "42601", "42703", "42P01", "23505"}
	case "mysql":
		want = []string{"1062", "1064", "1054", "1146", "1062"}
	}
	if want != nil {
		codes := make([]string, len(got))
		for i, e := range got {
			codes[i] = e.Code
		}
		require.Equal(t, want, codes)
	}
	return got
}

func execResults(s *confSession) any {
	t := s.t
	switch s.tg.dialect {
	case "postgres":
		s.exec("CREATE TABLE seq (id serial PRIMARY KEY, v text)")
	case "mysql":
		s.exec("CREATE TABLE seq (id int AUTO_INCREMENT PRIMARY KEY, v text)")
	case "sqlite":
		s.exec("CREATE TABLE seq (id integer PRIMARY KEY AUTOINCREMENT, v text)")
	}
	res := s.exec("INSERT INTO seq (v) VALUES ($1), ($2), ($3)", "a", "b", "c")
	insAffected, insErr := res.RowsAffected()
	lastID, lastErr := res.LastInsertId()
	upd := s.exec("UPDATE seq SET v = $1 WHERE v <> $2", "z", "a")
	updAffected, updErr := upd.RowsAffected()
	none := s.exec("DELETE FROM seq WHERE id > $1", 1000)
	noneAffected, noneErr := none.RowsAffected()
	require.Equal(t, int64(3), insAffected)
	require.Equal(t, int64(2), updAffected)
	require.Equal(t, int64(0), noneAffected)

	var returning []confResultSet
	if s.tg.dialect == "postgres" {
		returning = s.query("INSERT INTO seq (v) VALUES ($1) RETURNING id, v", "d")
	}
	require.NoError(t, s.db.PingContext(s.ctx))
	return []any{insAffected, inspectErr(insErr), lastID, inspectErr(lastErr), updAffected, inspectErr(updErr),
		noneAffected, inspectErr(noneErr), returning}
}

// namedArgs passes sql.Named: SQLite binds them by name, the other drivers
// refuse them, and the guard must neither accept what the driver refuses nor
// refuse what it accepts.
func namedArgs(s *confSession) any {
	var q string
	switch s.tg.dialect {
	case "postgres":
		q = "SELECT $1::int, $2::int"
	case "mysql":
		q = "SELECT ?, ?"
	case "sqlite":
		q = "SELECT :a, @b"
	}
	var a, b int64
	err := s.db.QueryRowContext(s.ctx, q, sql.Named("a", 1), sql.Named("b", 2)).Scan(&a, &b)
	if s.tg.family == famSQLite {
		require.NoError(s.t, err)
		require.Equal(s.t, []int64{1, 2}, []int64{a, b})
	}
	return []any{inspectErr(err), a, b}
}

// queryTimeout runs a statement that outlives its context's deadline: it
// must come back early with an error, and the pool must stay usable.
func queryTimeout(s *confSession) any {
	t := s.t
	var q string
	switch s.tg.dialect {
	case "postgres":
		q = "SELECT pg_sleep(30)"
	case "mysql":
		q = "SELECT SLEEP(30)"
	case "sqlite":
		q = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000) SELECT count(*) FROM c"
	}
	ctx, cancel := context.WithTimeout(s.ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rows, err := s.db.QueryContext(ctx, q)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		require.NoError(t, rows.Close())
	}
	require.Error(t, err, "a statement past its deadline must fail")
	require.Less(t, time.Since(start), 20*time.Second, "the statement was not interrupted")

	var one int
	require.NoError(t, s.db.QueryRowContext(s.ctx, "SELECT 1").Scan(&one))
	return []any{err != nil, one}
}

// largeResultRawBytes reads 5,000 rows into sql.RawBytes, which point into
// the driver's buffers until the next Next: a guard that keeps or rewrites
// those buffers wrongly shows up as a different digest.
func largeResultRawBytes(s *confSession) any {
	t := s.t
	const n = 5000
	switch s.tg.dialect {
	case "postgres":
		s.exec(`CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h, decode(md5(g::text), 'hex') AS b
			FROM generate_series(1, $1) AS g`, n)
	case "mysql":
		s.exec("CREATE TABLE big (id int PRIMARY KEY, h char(32), b varbinary(16))")
		s.exec(`INSERT INTO big WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
			SELECT n, md5(n), unhex(md5(n)) FROM seq`, n)
	case "sqlite":
		s.exec("CREATE TABLE big (id integer PRIMARY KEY, h text, b blob)")
		s.exec(`INSERT INTO big WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?)
			SELECT n, printf('row-%06d', n), CAST(printf('bytes-%06d', n) AS BLOB) FROM seq`, n)
	}
	rows, err := s.db.QueryContext(s.ctx, "SELECT id, h, b FROM big ORDER BY id")
	require.NoError(t, err)
	digest := sha256.New()
	count := 0
	var id, h, b sql.RawBytes
	for rows.Next() {
		require.NoError(t, rows.Scan(&id, &h, &b))
		fmt.Fprintf(digest, "%s|%s|%x\n", id, h, []byte(b))
		count++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	require.Equal(t, n, count)
	return []any{count, hex.EncodeToString(digest.Sum(nil))}
}

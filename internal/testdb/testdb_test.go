package testdb_test

import (
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard/internal/testdb"
)

func TestPostgresSchemasAreIsolatedAndDropped(t *testing.T) {
	var schema string
	t.Run("a", func(t *testing.T) {
		db := testdb.Postgres(t, "postgres")
		_, err := db.Exec("CREATE TABLE items (id int PRIMARY KEY)")
		require.NoError(t, err)
		require.NoError(t, db.QueryRow("SELECT current_schema()").Scan(&schema))
		require.True(t, strings.HasPrefix(schema, "guard_t_testpostgresschemas"), schema)

		// A sibling test's schema does not see this one's table.
		other := testdb.Postgres(t, "postgres")
		var n int
		require.NoError(t, other.QueryRow(
			"SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'items'").Scan(&n))
		require.Equal(t, 0, n)
	})
	admin := testdb.Open(t, "postgres", testdb.BasePostgresDSN())
	var n int
	require.NoError(t, admin.QueryRow("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n))
	require.Equal(t, 0, n, "schema %s should be dropped when its test ends", schema)
}

func TestPostgresDSNWorksWithPgx(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	lib := testdb.Open(t, "postgres", dsn)
	pgx := testdb.Open(t, "pgx", dsn)
	var a, b string
	require.NoError(t, lib.QueryRow("SELECT current_schema()").Scan(&a))
	require.NoError(t, pgx.QueryRow("SELECT current_schema()").Scan(&b))
	require.Equal(t, a, b)
}

func TestMariaDBDatabasesAreIsolatedAndDropped(t *testing.T) {
	var name string
	t.Run("a", func(t *testing.T) {
		dsn := testdb.MariaDBDSN(t)
		cfg, err := mysql.ParseDSN(dsn)
		require.NoError(t, err)
		name = cfg.DBName
		db := testdb.Open(t, "mysql", dsn)
		_, err = db.Exec("CREATE TABLE items (id int PRIMARY KEY)")
		require.NoError(t, err)
		var cur string
		require.NoError(t, db.QueryRow("SELECT DATABASE()").Scan(&cur))
		require.Equal(t, name, cur)
	})
	admin := testdb.Open(t, "mysql", testdb.BaseMariaDBDSN())
	var n int
	require.NoError(t, admin.QueryRow("SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n))
	require.Equal(t, 0, n, "database %s should be dropped when its test ends", name)
}

func TestSQLiteIsAFreshFile(t *testing.T) {
	db := testdb.SQLite(t, "sqlite")
	_, err := db.Exec("CREATE TABLE items (id integer PRIMARY KEY)")
	require.NoError(t, err)
	other := testdb.SQLite(t, "sqlite")
	var n int
	require.NoError(t, other.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'items'").Scan(&n))
	require.Equal(t, 0, n)
}

// fatalRecorder stands in for a testing.T so that a Fatalf can be observed.
type fatalRecorder struct {
	testing.TB
	mu       sync.Mutex
	msg      string
	cleanups []func()
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *fatalRecorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// fatalOf runs f with a recorder and returns what it passed to Fatalf.
func fatalOf(t *testing.T, f func(testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r.msg
}

func TestUnreachablePostgresFailsWithStartHintAndNoPassword(t *testing.T) {
	t.Setenv(testdb.EnvPostgresDSN, "postgres://postgres:s3cret-pw@127.0.0.1:1/test?sslmode=disable")
	msg := fatalOf(t, func(tb testing.TB) { testdb.PostgresDSN(tb) })
	require.Contains(t, msg, "not reachable")
	require.Contains(t, msg, "pg_ctlcluster")
	require.Contains(t, msg, "./scripts/test.sh")
	require.NotContains(t, msg, "s3cret-pw")

	t.Setenv(testdb.EnvPostgresDSN, "host=127.0.0.1 port=1 user=postgres password='s3cret pw' sslmode=disable")
	msg = fatalOf(t, func(tb testing.TB) { testdb.PostgresDSN(tb) })
	require.Contains(t, msg, "not reachable")
	require.NotContains(t, msg, "s3cret")
}

func TestUnreachableMariaDBFailsWithStartHintAndNoPassword(t *testing.T) {
	t.Setenv(testdb.EnvMariaDBDSN, "root:s3cret-pw@tcp(127.0.0.1:1)/test")
	msg := fatalOf(t, func(tb testing.TB) { testdb.MariaDBDSN(tb) })
	require.Contains(t, msg, "not reachable")
	require.Contains(t, msg, "mariadbd")
	require.NotContains(t, msg, "s3cret-pw")
}

// The DSN helpers must also serve benchmarks.
var _ = func(b *testing.B) *sql.DB { return testdb.Postgres(b, "postgres") }

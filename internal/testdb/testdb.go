package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"  // registers "postgres", used for the schema set-up
	_ "modernc.org/sqlite" // registers "sqlite"
)

// Environment variables that point the tests at other servers.
const (
	// EnvPostgresDSN overrides the PostgreSQL DSN (URL or key=value form).
	EnvPostgresDSN = "GUARD_TEST_PG_DSN"
	// EnvMariaDBDSN overrides the MariaDB/MySQL DSN (go-sql-driver/mysql form).
	EnvMariaDBDSN = "GUARD_TEST_MYSQL_DSN"
)

// Default DSNs: the development and CI set-up that scripts/test.sh prepares.
const (
	DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultMariaDBDSN  = "root@tcp(127.0.0.1:3306)/test"
)

// How long to wait for a server before telling the developer to start it.
const connectTimeout = 10 * time.Second

const pgStartHint = "Start the test databases with ./scripts/test.sh (GUARD_TEST_SETUP_ONLY=1 only starts them), " +
	"or: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; " +
	"or point " + EnvPostgresDSN + " at a PostgreSQL server"

const myStartHint = "Start the test databases with ./scripts/test.sh (GUARD_TEST_SETUP_ONLY=1 only starts them), " +
	"or: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd; " +
	"or point " + EnvMariaDBDSN + " at a MariaDB/MySQL server"

// BasePostgresDSN returns the PostgreSQL DSN the tests use before isolation:
// GUARD_TEST_PG_DSN when set, else DefaultPostgresDSN.
func BasePostgresDSN() string {
	if v := os.Getenv(EnvPostgresDSN); v != "" {
		return v
	}
	return DefaultPostgresDSN
}

// BaseMariaDBDSN returns the MariaDB DSN the tests use before isolation:
// GUARD_TEST_MYSQL_DSN when set, else DefaultMariaDBDSN.
func BaseMariaDBDSN() string {
	if v := os.Getenv(EnvMariaDBDSN); v != "" {
		return v
	}
	return DefaultMariaDBDSN
}

// PostgresDSN creates a schema of its own for t and returns a DSN whose
// search_path selects it, so unqualified names land there. The DSN works with
// lib/pq ("postgres") and pgx ("pgx"). The schema is dropped, with everything
// in it, when t ends; close any *sql.DB opened on the DSN before that (one
// registered with t.Cleanup after this call is closed first).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := BasePostgresDSN()
	admin := openAdmin(t, "postgres", base, "PostgreSQL", redactPostgres(base), pgStartHint)
	defer admin.Close()

	schema := uniqueName(t)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("testdb: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		dropIn(t, "postgres", base, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})
	dsn, err := withSearchPath(base, schema)
	if err != nil {
		t.Fatalf("testdb: %s: %v", EnvPostgresDSN, err)
	}
	return dsn
}

// MariaDBDSN creates a database of its own for t and returns a
// go-sql-driver/mysql DSN that uses it. The database is dropped when t ends.
// To add driver parameters, parse it with mysql.ParseDSN and format it again.
func MariaDBDSN(t testing.TB) string {
	t.Helper()
	base := BaseMariaDBDSN()
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("testdb: %s: %v", EnvMariaDBDSN, err)
	}
	admin := openAdmin(t, "mysql", base, "MariaDB", redactMySQL(cfg), myStartHint)
	defer admin.Close()

	name := uniqueName(t)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		dropIn(t, "mysql", base, "DROP DATABASE IF EXISTS "+name)
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// SQLiteDSN returns a modernc.org/sqlite DSN for a new database file in
// t.TempDir(). WAL and a busy timeout let concurrent connections wait for
// each other instead of failing with SQLITE_BUSY.
func SQLiteDSN(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)"
}

// Postgres opens driverName (for example "postgres", "pgx" or a guarded
// registration) on a fresh schema from PostgresDSN and closes it when t ends.
func Postgres(t testing.TB, driverName string) *sql.DB {
	t.Helper()
	return Open(t, driverName, PostgresDSN(t))
}

// MariaDB opens driverName on a fresh database from MariaDBDSN and closes it
// when t ends.
func MariaDB(t testing.TB, driverName string) *sql.DB {
	t.Helper()
	return Open(t, driverName, MariaDBDSN(t))
}

// SQLite opens driverName on a fresh file from SQLiteDSN and closes it when
// t ends.
func SQLite(t testing.TB, driverName string) *sql.DB {
	t.Helper()
	return Open(t, driverName, SQLiteDSN(t))
}

// Open opens driverName on dsn, checks the connection and closes the pool
// when t ends.
func Open(t testing.TB, driverName, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatalf("testdb: open %s: %v", driverName, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("testdb: ping through %s: %v", driverName, err)
	}
	return db
}

// openAdmin opens the connection that creates and drops the per-test
// namespaces, failing t with a start hint when the server is unreachable.
func openAdmin(t testing.TB, driverName, dsn, server, shown, hint string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatalf("testdb: %s DSN %s: %v", server, shown, err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		t.Fatalf("testdb: %s at %s is not reachable: %v\n%s", server, shown, err, hint)
	}
	return db
}

// dropIn runs a drop statement on a new connection at cleanup time. A failed
// drop leaves litter behind but says so, rather than failing a passed test.
func dropIn(t testing.TB, driverName, dsn, stmt string) {
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Logf("testdb: cleanup %q: %v", stmt, err)
		return
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Logf("testdb: cleanup %q: %v", stmt, err)
	}
}

var notIdent = regexp.MustCompile(`[^a-z0-9]+`)

// uniqueName returns a lower-case identifier that starts with the test's name
// (to find litter) and ends with random hex (to never collide), within the
// 63 bytes PostgreSQL and 64 MariaDB allow.
func uniqueName(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testdb: random name: %v", err)
	}
	name := strings.Trim(notIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 36 {
		name = name[:36]
	}
	return "guard_t_" + name + "_" + hex.EncodeToString(b[:])
}

// withSearchPath adds search_path to a PostgreSQL DSN in URL or key=value
// form. Both lib/pq and pgx send unknown settings as run-time parameters.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse PostgreSQL URL: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema, nil
}

var pgPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(\\.|[^'])*'|\S+)`)

// redactPostgres hides the password of a DSN that goes into a message.
func redactPostgres(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return pgPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

// redactMySQL hides the password of a DSN that goes into a message.
func redactMySQL(cfg *mysql.Config) string {
	c := cfg.Clone()
	if c.Passwd != "" {
		c.Passwd = "xxxxx"
	}
	return c.FormatDSN()
}

// ReachablePostgres returns BasePostgresDSN after checking that the server
// answers, failing t with a start hint when it does not. For tests that
// manage their own uniquely named objects in the shared database.
func ReachablePostgres(t testing.TB) string {
	t.Helper()
	dsn := BasePostgresDSN()
	openAdmin(t, "postgres", dsn, "PostgreSQL", redactPostgres(dsn), pgStartHint).Close()
	return dsn
}

// ReachableMariaDB is ReachablePostgres for MariaDB.
func ReachableMariaDB(t testing.TB) string {
	t.Helper()
	dsn := BaseMariaDBDSN()
	shown := "the MariaDB test server"
	if cfg, err := mysql.ParseDSN(dsn); err == nil {
		shown = redactMySQL(cfg)
	}
	openAdmin(t, "mysql", dsn, "MariaDB", shown, myStartHint).Close()
	return dsn
}

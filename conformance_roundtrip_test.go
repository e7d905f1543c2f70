package guard_test

import (
	"context"
	"database/sql"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/testdb"
)

// countingDialer counts the writes lib/pq makes to the server: each is one
// batch of protocol messages, so the count tracks round trips.
type countingDialer struct{ writes atomic.Int64 }

func (d *countingDialer) Dial(network, address string) (net.Conn, error) {
	return d.DialTimeout(network, address, 0)
}

func (d *countingDialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: timeout}).Dial(network, address)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, d: d}, nil
}

type countingConn struct {
	net.Conn
	d *countingDialer
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.d.writes.Add(1)
	return c.Conn.Write(p)
}

// TestConformanceNoExtraRoundTrips requires the guard to send the server
// exactly what the raw driver sends for everyday calls: a guard that turns
// one query into prepare + execute + close costs a round trip each, which no
// benchmark on a quiet machine would show as clearly.
func TestConformanceNoExtraRoundTrips(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	seed := testdb.Open(t, "postgres", dsn)
	_, err := seed.Exec("CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL)")
	require.NoError(t, err)
	_, err = seed.Exec("INSERT INTO accounts SELECT g, 'owner-' || g FROM generate_series(1, 10) AS g")
	require.NoError(t, err)

	ctx := identity.With(context.Background(), conformanceIdentity())
	calls := map[string]func(db *sql.DB) error{
		"QueryRowWithArgs": func(db *sql.DB) error {
			var owner string
			return db.QueryRowContext(ctx, "SELECT owner FROM accounts WHERE id = $1", 3).Scan(&owner)
		},
		"QueryWithoutArgs": func(db *sql.DB) error {
			var n int
			return db.QueryRowContext(ctx, "SELECT count(*) FROM accounts").Scan(&n)
		},
		"ExecWithArgs": func(db *sql.DB) error {
			_, err := db.ExecContext(ctx, "UPDATE accounts SET owner = $1 WHERE id = $2", "x", 4)
			return err
		},
		"ExecWithoutArgs": func(db *sql.DB) error {
			_, err := db.ExecContext(ctx, "UPDATE accounts SET owner = 'y' WHERE id = 5")
			return err
		},
	}
	writes := func(guarded bool, call func(db *sql.DB) error) int64 {
		c, err := pq.NewConnector(dsn)
		require.NoError(t, err)
		d := &countingDialer{}
		c.Dialer(d)
		var db *sql.DB
		if guarded {
			db = sql.OpenDB(guard.NewConnector(c, append(passThrough, guard.WithAuditor(audit.NewMemory(0)))...))
		} else {
			db = sql.OpenDB(c)
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		require.NoError(t, db.PingContext(ctx)) // connect outside the count
		require.NoError(t, call(db))            // and warm any cache
		before := d.writes.Load()
		for range 10 {
			require.NoError(t, call(db))
		}
		return d.writes.Load() - before
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			raw := writes(false, call)
			guarded := writes(true, call)
			require.Positive(t, raw)
			require.Equal(t, raw, guarded, "writes to the server for 10 calls: raw %d, guarded %d", raw, guarded)
		})
	}
}

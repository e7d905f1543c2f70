package guard_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/testdb"
)

// benchRows is the size of the table point SELECTs read from.
const benchRows = 10000

// BenchmarkPointSelect measures a point SELECT by primary key through raw
// lib/pq and through "guarded-postgres" with the pass-through pipeline,
// against the same PostgreSQL table in the same run, with 1 and 16
// goroutines (the pool sized to match).
//
// The raw/... and guarded/... sub-benchmarks time each side alone. The
// ratio/... sub-benchmarks time both in one b.N loop, alternating short
// batches so that both sides see the same machine load, and report
// guarded/raw: the guarded throughput as a fraction of the raw one (1.0 means
// no cost). On a shared machine the ratio is the number to read; absolute
// times move with the neighbours.
//
//	go test -run '^$' -bench BenchmarkPointSelect -benchtime 5s .
func BenchmarkPointSelect(b *testing.B) {
	dsn := testdb.PostgresDSN(b)
	raw := testdb.Open(b, "postgres", dsn)
	guarded := testdb.Open(b, guard.PostgresDriverName, dsn)
	ctx := identity.With(context.Background(), identity.Identity{
		Subject: "bench-agent", Kind: identity.Agent,
		OnBehalfOf: &identity.Identity{Subject: "alice@example.com", Kind: identity.Human},
	})
	seedPointSelect(b, raw)

	for _, workers := range []int{1, 16} {
		for _, side := range []struct {
			name string
			db   *sql.DB
		}{{"raw", raw}, {"guarded", guarded}} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", side.name, workers), func(b *testing.B) {
				sizePool(side.db, workers)
				warmUp(b, ctx, side.db, workers)
				b.ResetTimer()
				pointSelects(b, ctx, side.db, workers, 0, b.N)
			})
		}
		b.Run(fmt.Sprintf("ratio/goroutines=%d", workers), func(b *testing.B) {
			sizePool(raw, workers)
			sizePool(guarded, workers)
			warmUp(b, ctx, raw, workers)
			warmUp(b, ctx, guarded, workers)
			b.ResetTimer()
			var rawTime, guardedTime time.Duration
			batch := 50 * workers
			for done, round := 0, 0; done < b.N; round++ {
				n := min(batch, b.N-done)
				timed := func(db *sql.DB, total *time.Duration) {
					start := time.Now()
					pointSelects(b, ctx, db, workers, done, n)
					*total += time.Since(start)
				}
				// Alternate who goes first so neither always runs on a
				// warmer cache or a quieter neighbour.
				if round%2 == 0 {
					timed(raw, &rawTime)
					timed(guarded, &guardedTime)
				} else {
					timed(guarded, &guardedTime)
					timed(raw, &rawTime)
				}
				done += n
			}
			b.ReportMetric(float64(rawTime.Nanoseconds())/float64(b.N), "raw-ns/op")
			b.ReportMetric(float64(guardedTime.Nanoseconds())/float64(b.N), "guarded-ns/op")
			if guardedTime > 0 {
				b.ReportMetric(float64(rawTime)/float64(guardedTime), "guarded/raw")
			}
		})
	}
}

func seedPointSelect(b *testing.B, db *sql.DB) {
	b.Helper()
	_, err := db.Exec(`CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance bigint NOT NULL)`)
	if err != nil {
		b.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO accounts SELECT g, 'owner-' || g, g * 10 FROM generate_series(1, $1) AS g`, benchRows)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`ANALYZE accounts`); err != nil {
		b.Fatal(err)
	}
}

// sizePool gives every goroutine a connection of its own, as a service
// sized for its concurrency would.
func sizePool(db *sql.DB, workers int) {
	db.SetMaxOpenConns(workers)
	db.SetMaxIdleConns(workers)
}

// warmUp opens the pool's connections and fills caches outside the timing.
func warmUp(b *testing.B, ctx context.Context, db *sql.DB, workers int) {
	b.Helper()
	pointSelects(b, ctx, db, workers, 0, 20*workers)
}

// pointSelects runs n point SELECTs, keys from offset on, spread over
// workers goroutines that take the next key from a shared counter.
func pointSelects(b *testing.B, ctx context.Context, db *sql.DB, workers, offset, n int) {
	var next atomic.Int64
	next.Store(int64(offset))
	end := int64(offset + n)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				id      int
				owner   string
				balance int64
			)
			for {
				i := next.Add(1) - 1
				if i >= end {
					return
				}
				key := int(i%benchRows) + 1
				err := db.QueryRowContext(ctx, "SELECT id, owner, balance FROM accounts WHERE id = $1", key).
					Scan(&id, &owner, &balance)
				if err != nil {
					b.Error(err)
					return
				}
				if id != key || balance != int64(key)*10 {
					b.Errorf("key %d: got id %d balance %d", key, id, balance)
					return
				}
			}
		}()
	}
	wg.Wait()
}

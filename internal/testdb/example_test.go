package testdb_test

import (
	"testing"

	"github.com/guardedsql/guard/internal/testdb"
)

// A test gets its own schema in the real PostgreSQL; it is dropped when the
// test ends, so tests in parallel packages never see each other's tables.
func Example() {
	// Inside func TestX(t *testing.T):
	var t *testing.T
	_ = func() {
		db := testdb.Postgres(t, "postgres")
		if _, err := db.Exec("CREATE TABLE orders (id int PRIMARY KEY)"); err != nil {
			t.Fatal(err)
		}
	}
}

package guard_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
)

// Guarding a driver: statements are tied to the identity in ctx, the
// baseline policy denies destructive ones before they reach the database,
// sensitive values come back masked, and every attempt is audited.
func Example() {
	trail := audit.NewMemory(0)
	guard.Register("guarded-sqlite-example", &sqlite.Driver{}, guard.WithAuditor(trail))
	db, err := sql.Open("guarded-sqlite-example", ":memory:")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one in-memory database

	ctx := identity.With(context.Background(), identity.Identity{Subject: "svc-orders", Kind: identity.Service})
	db.ExecContext(ctx, "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
	db.ExecContext(ctx, "INSERT INTO customers VALUES (1, 'alice@example.com')")

	var email string
	db.QueryRowContext(ctx, "SELECT email FROM customers WHERE id = ?", 1).Scan(&email)
	fmt.Println("email:", email)

	_, err = db.ExecContext(ctx, "DROP TABLE customers")
	var denied *guard.DeniedError
	if errors.As(err, &denied) {
		fmt.Println("denied by", denied.Rule)
	}
	fmt.Println("audit records:", len(trail.Records()))
	// Output:
	// email: [masked:email]
	// denied by deny-drop
	// audit records: 4
}

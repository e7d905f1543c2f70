// Package guard is a database/sql driver wrapper that governs every
// statement an application sends: it ties the statement to the identity in
// its context, decides it with a CEL policy, can hold it for a human's
// approval, masks sensitive values in the rows it returns, and leaves one
// audit record per statement attempt.
//
// An application changes only the driver name:
//
//	import _ "github.com/guardedsql/guard" // registers "guarded-postgres" (lib/pq inside)
//
//	db, err := sql.Open("guarded-postgres", "postgres://app@db/prod?guard.mode=observe")
//	ctx = identity.With(ctx, identity.Identity{Subject: "copilot-7", Kind: identity.Agent})
//	rows, err := db.QueryContext(ctx, "SELECT id, email FROM customers")
//
// Any other driver is guarded with Register, Wrap or NewConnector:
//
//	guard.Register("guarded-mysql", &mysql.MySQLDriver{})
//	db := sql.OpenDB(guard.NewConnector(pgxConnector, guard.WithPolicy(p)))
//
// A statement the policy denies returns a *DeniedError (errors.Is(err,
// ErrDenied)) and never reaches the database. Errors of the wrapped driver
// (*pq.Error, *mysql.MySQLError...) come back unchanged, so errors.As works.
//
// # Why the driver layer is our own
//
// The design named github.com/ngrok/sqlmw for interception. Its wrappers
// pass the legacy context-free methods (Conn.Exec, Conn.Query, Conn.Prepare,
// Stmt.Exec, Stmt.Query) straight to the wrapped driver without calling the
// interceptor, and those methods are reachable through sql.Conn.Raw and
// db.Driver().Open: a way around the guard (DESIGN.md pitfall 9). It also
// cannot keep the per-connection state that the ErrSkip fallback (pitfall 1)
// and lib/pq's COPY FROM STDIN (pitfall 8) need to be decided and audited
// once, and it answers NamedValueChecker itself instead of deferring to the
// wrapped driver (pitfall 10). So conn.go, stmt.go, rows.go and connector.go
// implement the wrapping directly; each optional interface is claimed with a
// fallback that behaves exactly as database/sql does when the wrapped driver
// lacks it.
package guard

// Command demo shows guard end to end on an embedded SQLite database: no
// server to set up. Run it with
//
//	go run ./examples/demo
//
// An agent acting for a human reads customers (emails and card numbers come
// back masked), tries to drop the table and to delete every row (denied
// before SQLite sees them), and updates one row after a reviewer approves.
// Every statement leaves a hash-chained, signed audit record in a JSON-lines
// file, which the demo verifies at the end.
package main

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/policy/approval"
)

// demoPolicy keeps the baseline's safety rules and adds masking choices:
// agents get deterministic tokens (joins still work), humans partial values,
// and the pii_reader role sees clear text.
const demoPolicy = `version: 1
name: demo
extends: baseline
env: {env: demo}
masking:
  kinds: {agent: hash, human: partial}
  hash_key_env: DEMO_MASK_KEY
  exemptions:
    - name: pii-readers
      when: "'pii_reader' in identity.roles"
tests:
  - identity: {subject: copilot-7, kind: agent}
    sql: DROP TABLE customers
    expect: deny
`

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	dir, err := os.MkdirTemp("", "guard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(demoPolicy), 0o600); err != nil {
		return err
	}
	os.Setenv("DEMO_MASK_KEY", "demo-only-key-do-not-use-in-production")
	seed := make([]byte, ed25519.SeedSize) // a fixed demo key; use a real secret in production
	signingKey := base64.StdEncoding.EncodeToString(seed)
	auditFile := filepath.Join(dir, "audit.jsonl")

	// A reviewer who approves what is asked of them, after a look.
	reviews := approval.NewQueue(approval.WithTimeout(10 * time.Second))
	go reviewer(reviews)

	// Any driver can be guarded; this one is registered with an approver in
	// code and configured drop-in style through DSN parameters.
	guard.Register("guarded-sqlite", &sqlite.Driver{}, guard.WithApprover(reviews))
	params := url.Values{}
	params.Set("guard.policy", policyPath)
	params.Set("guard.audit.file", auditFile)
	params.Set("guard.audit.spool_dir", filepath.Join(dir, "spool"))
	params.Set("guard.audit.signing_key", signingKey)
	params.Set("guard.audit.checkpoint_every", "5")
	dsn := "file:" + filepath.Join(dir, "shop.db") + "?" + params.Encode()
	db, err := sql.Open("guarded-sqlite", dsn)
	if err != nil {
		return err
	}

	ctx := context.Background()
	dba := identity.With(ctx, identity.Identity{Subject: "dana@example.com", Kind: identity.Human, Roles: []string{"dba"}})
	agent := identity.With(ctx, identity.Identity{
		Subject: "copilot-7", Kind: identity.Agent, Session: "chat-42",
		OnBehalfOf: &identity.Identity{Subject: "alice@example.com", Kind: identity.Human},
	})
	reader := identity.With(ctx, identity.Identity{Subject: "auditor@example.com", Kind: identity.Human, Roles: []string{"pii_reader"}})

	step("a DBA creates and fills the customers table")
	for _, q := range []string{
		`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, card_number TEXT, notes TEXT)`,
		`INSERT INTO customers VALUES (1, 'Alice Liddell', 'alice@example.com', '4111 1111 1111 1111', 'prefers email')`,
		`INSERT INTO customers VALUES (2, 'Bob Builder', 'bob@builder.io', '5555555555554444', 'called from +1 415 555 2671')`,
	} {
		if _, err := db.ExecContext(dba, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}

	step("the agent reads customers: sensitive columns come back as tokens")
	if err := show(agent, db, "SELECT id, name, email, card_number FROM customers"); err != nil {
		return err
	}
	step("a support human sees partial values; derived columns are masked too")
	if err := show(dba, db, "SELECT id, lower(email) AS contact, card_number FROM customers"); err != nil {
		return err
	}
	step("a pii_reader sees clear values")
	if err := show(reader, db, "SELECT id, email FROM customers"); err != nil {
		return err
	}

	step("the agent tries destructive statements: denied before SQLite sees them")
	for _, q := range []string{"DROP TABLE customers", "DELETE FROM customers", "UPDATE customers SET notes = '' WHERE 1=1"} {
		_, err := db.ExecContext(agent, q)
		var denied *guard.DeniedError
		if errors.As(err, &denied) {
			fmt.Printf("  %-45s -> denied by %s: %s\n", q, denied.Rule, denied.Message)
		} else {
			return fmt.Errorf("%s: expected a denial, got %v", q, err)
		}
	}
	var n int
	if err := db.QueryRowContext(dba, "SELECT count(*) FROM customers").Scan(&n); err != nil {
		return err
	}
	fmt.Printf("  customers still holds %d rows\n", n)

	step("the agent's targeted write waits for a reviewer, then runs")
	if _, err := db.ExecContext(agent, "UPDATE customers SET notes = 'vip' WHERE id = ?", 1); err != nil {
		return err
	}
	fmt.Println("  approved and applied")

	// Closing the DB drains the audit trail to the file.
	if err := db.Close(); err != nil {
		return err
	}

	step("the audit trail: one record per statement, chained and signed")
	f, err := os.Open(auditFile)
	if err != nil {
		return err
	}
	defer f.Close()
	for rec, err := range audit.ReadRecords(f) {
		if err != nil {
			return err
		}
		if rec.Kind == audit.KindStatement {
			fmt.Println("  " + audit.FormatLine(rec))
		}
	}
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	report, err := audit.VerifyReader(f, pub)
	if err != nil {
		return err
	}
	fmt.Printf("  verified %d records: ok=%v, signed checkpoints=%d\n", report.Records, report.OK(), checkpoints(report))
	return nil
}

func checkpoints(r audit.Report) int {
	n := 0
	for _, c := range r.Chains {
		n += c.Checkpoints
	}
	return n
}

func reviewer(q *approval.Queue) {
	for {
		for _, r := range q.Pending() {
			fmt.Printf("  reviewer bob@example.com sees: %s wants %q (rule %s)\n", r.Identity, r.Query, r.Rule)
			_ = q.Decide(r.ID, true, "bob@example.com", "targeted update, fine")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func step(s string) { fmt.Printf("\n== %s\n", s) }

func show(ctx context.Context, db *sql.DB, q string) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	fmt.Printf("  %s\n", q)
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		fmt.Print("   ")
		for i, v := range vals {
			fmt.Printf(" %s=%s", cols[i], v.String)
		}
		fmt.Println()
	}
	return rows.Err()
}

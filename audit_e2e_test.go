package guard_test

// End-to-end audit tests: the guarded lib/pq driver, opened the way a user
// opens it (sql.Open with guard.audit.* DSN parameters), against the real
// PostgreSQL, shipping to an in-process Kafka broker that the tests stop and
// restart. What is checked is what an auditor relies on: one record per
// statement, nothing lost through an outage, the right identity and decision
// in each, a chain that verifies, and statements refused rather than run
// unrecorded in fail-closed mode.

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/kafkatest"
	"github.com/guardedsql/guard/internal/testdb"
)

const e2eTopic = "guard.audit"

// e2eKey is the test's Ed25519 signing key; the DSN carries its seed in hex.
func e2eKey(t testing.TB) (seedHex string, pub ed25519.PublicKey) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "guard end-to-end audit test key.")
	priv := ed25519.NewKeyFromSeed(seed)
	return hex.EncodeToString(seed), priv.Public().(ed25519.PublicKey)
}

// withGuardSettings adds guard.* parameters to a PostgreSQL DSN in URL or
// key=value form.
func withGuardSettings(t testing.TB, dsn string, kv ...string) string {
	t.Helper()
	if len(kv)%2 != 0 {
		t.Fatalf("withGuardSettings: odd key/value list %q", kv)
	}
	if strings.Contains(dsn, "://") {
		var b strings.Builder
		b.WriteString(dsn)
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		for i := 0; i < len(kv); i += 2 {
			b.WriteString(sep + url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
			sep = "&"
		}
		return b.String()
	}
	var b strings.Builder
	b.WriteString(dsn)
	for i := 0; i < len(kv); i += 2 {
		v := strings.ReplaceAll(strings.ReplaceAll(kv[i+1], `\`, `\\`), `'`, `\'`)
		b.WriteString(" " + kv[i] + "='" + v + "'")
	}
	return b.String()
}

// rawPostgres opens lib/pq itself on dsn: the side door that proves what
// reached the server, and sets tables up without leaving audit records.
func rawPostgres(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	return testdb.Open(t, "postgres", dsn)
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// topicRecords reads every message of the topic back and decodes it,
// checking that each carries its record id as ce_id and its chain id as key.
func topicRecords(t *testing.T, b *kafkatest.Broker) []audit.Record {
	t.Helper()
	msgs := b.Consume(t, e2eTopic)
	out := make([]audit.Record, 0, len(msgs))
	for _, m := range msgs {
		r, err := audit.DecodeRecord(m.Value)
		if err != nil {
			t.Fatalf("message at partition %d offset %d is not an audit record: %v", m.Partition, m.Offset, err)
		}
		if m.Headers["ce_id"] != r.ID || string(m.Key) != r.Chain.ID {
			t.Fatalf("message %s: ce_id %q, key %q; want the record id and chain id %s", r.ID, m.Headers["ce_id"], m.Key, r.Chain.ID)
		}
		out = append(out, *r)
	}
	return out
}

// dedupe keeps the first copy of each record id and fails if two copies of
// one id differ in hash (a duplicate must be the same record, re-sent).
func dedupe(t *testing.T, recs []audit.Record) (unique []audit.Record, dups int) {
	t.Helper()
	hashOf := map[string]string{}
	for _, r := range recs {
		if h, ok := hashOf[r.ID]; ok {
			if h != r.Chain.Hash {
				t.Errorf("record %s delivered twice with different hashes %s and %s", r.ID, h, r.Chain.Hash)
			}
			dups++
			continue
		}
		hashOf[r.ID] = r.Chain.Hash
		unique = append(unique, r)
	}
	return unique, dups
}

func requireVerifies(t *testing.T, recs []audit.Record, pub ed25519.PublicKey) audit.Report {
	t.Helper()
	rep, err := audit.Verify(audit.RecordsOf(recs), pub)
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	if !rep.OK() {
		for i, p := range rep.Problems {
			if i == 10 {
				t.Logf("... and %d more", len(rep.Problems)-10)
				break
			}
			t.Logf("problem: %s", p)
		}
		t.Fatalf("audit.Verify found %d problems in %d records", len(rep.Problems), rep.Records)
	}
	return rep
}

// opTag marks each statement the test issues, so its record can be found
// among the others: a trailing comment is part of the recorded text and
// changes nothing the server or the policy sees.
var opTag = regexp.MustCompile(`/\* op (\d+-\d+) \*/`)

// expectedRecord is what the test knows about a statement it issued.
type expectedRecord struct {
	subject, kind string
	onBehalfOf    string // "" for none
	command       string
	denied        bool
	rule          string
}

var (
	alice = identity.Identity{Subject: "alice@example.com", Kind: identity.Human}
	carol = identity.Identity{Subject: "carol@example.com", Kind: identity.Human}
)

// TestAuditEndToEnd_OutageLosesNothing: 16 goroutines run 4,000 statements
// through the guarded driver as agents, humans and services while the
// broker goes away for three seconds; after DB.Close every statement has
// exactly one record on the topic, with the right identity, delegation and
// decision, and the chain verifies under the public key.
func TestAuditEndToEnd_OutageLosesNothing(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	raw := rawPostgres(t, dsn)
	mustExec(t, raw, `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)`)
	mustExec(t, raw, `INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 500) g`)
	mustExec(t, raw, `CREATE TABLE events (id bigserial PRIMARY KEY, worker int NOT NULL, n int NOT NULL)`)

	b := kafkatest.Start(t, e2eTopic, 3)
	seed, pub := e2eKey(t)
	db, err := sql.Open(guard.PostgresDriverName, withGuardSettings(t, dsn,
		"guard.audit.brokers", b.Addr(),
		"guard.audit.topic", e2eTopic,
		"guard.audit.spool_dir", t.TempDir(),
		"guard.audit.signing_key", seed,
		"guard.audit.checkpoint_every", "500",
	))
	if err != nil {
		t.Fatalf("sql.Open with audit settings: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			db.Close()
		}
	})
	db.SetMaxOpenConns(16)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}

	const workers, perWorker = 16, 250
	const total = workers * perWorker
	var (
		mu       sync.Mutex
		expected = make(map[string]expectedRecord, total)
		issued   atomic.Int64
		down     atomic.Bool
		wg       sync.WaitGroup
	)
	outageDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(outageDone)
		for issued.Load() < total/4 {
			time.Sleep(2 * time.Millisecond)
		}
		down.Store(true)
		stopAt := time.Now()
		b.Stop()
		time.Sleep(3 * time.Second)
		b.Restart()
		down.Store(false)
		t.Logf("broker down from %s to %s after the start, %d statements issued by then",
			stopAt.Sub(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond), issued.Load())
	}()

	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent := identity.Identity{Subject: fmt.Sprintf("copilot-%d", w), Kind: identity.Agent,
				Session: fmt.Sprintf("chat-%d", w), OnBehalfOf: &alice}
			svc := identity.Identity{Subject: "billing-svc", Kind: identity.Service,
				Session: fmt.Sprintf("job-%d", w), OnBehalfOf: &carol}
			bob := identity.Identity{Subject: "bob@example.com", Kind: identity.Human, Session: fmt.Sprintf("psql-%d", w)}
			for i := range perWorker {
				tag := fmt.Sprintf("%d-%d", w, i)
				var (
					id   identity.Identity
					exp  expectedRecord
					err  error
					kind string
				)
				switch {
				case i%50 == 7: // an agent tries to drop a table: denied outright
					id, kind = agent, "drop"
					exp = expectedRecord{command: "DROP TABLE", denied: true, rule: "deny-drop"}
				case i%50 == 31: // a human forgets the WHERE: denied
					id, kind = bob, "update-all"
					exp = expectedRecord{command: "UPDATE", denied: true, rule: "deny-unbounded-write"}
				case i%3 == 0: // a service writes for a human
					id, kind = svc, "insert"
					exp = expectedRecord{command: "INSERT"}
				case i%7 == 5: // a human updates one row
					id, kind = bob, "update-one"
					exp = expectedRecord{command: "UPDATE"}
				default: // an agent reads by primary key for a human
					id, kind = agent, "select"
					exp = expectedRecord{command: "SELECT"}
				}
				exp.subject, exp.kind = id.Subject, string(id.Kind)
				if id.OnBehalfOf != nil {
					exp.onBehalfOf = id.OnBehalfOf.Subject
				}
				mu.Lock()
				expected[tag] = exp
				mu.Unlock()
				ctx := identity.With(context.Background(), id)
				comment := " /* op " + tag + " */"
				issued.Add(1)
				switch kind {
				case "drop":
					_, err = db.ExecContext(ctx, "DROP TABLE items"+comment)
				case "update-all":
					_, err = db.ExecContext(ctx, "UPDATE items SET qty = 0"+comment)
				case "insert":
					var res sql.Result
					res, err = db.ExecContext(ctx, "INSERT INTO events (worker, n) VALUES ($1, $2)"+comment, w, i)
					if err == nil {
						if n, _ := res.RowsAffected(); n != 1 {
							err = fmt.Errorf("insert affected %d rows", n)
						}
					}
				case "update-one":
					_, err = db.ExecContext(ctx, "UPDATE items SET qty = qty + 1 WHERE id = $1"+comment, 1+(w*perWorker+i)%500)
				case "select":
					var name string
					err = db.QueryRowContext(ctx, "SELECT name FROM items WHERE id = $1"+comment, 1+(w*perWorker+i)%500).Scan(&name)
				}
				if exp.denied {
					if !errors.Is(err, guard.ErrDenied) {
						t.Errorf("op %s (%s): err = %v, want guard.ErrDenied", tag, kind, err)
						return
					}
				} else if err != nil {
					t.Errorf("op %s (%s): %v", tag, kind, err)
					return
				}
				// Keep statements arriving through the outage, as a live
				// service would, rather than finishing before it ends.
				if down.Load() {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d statements issued in %s", issued.Load(), time.Since(start).Round(time.Millisecond))
	<-outageDone
	if t.Failed() {
		t.FailNow()
	}
	began := time.Now()
	closed = true
	if err := db.Close(); err != nil {
		t.Fatalf("DB.Close did not drain the audit trail: %v", err)
	}
	t.Logf("DB.Close drained the spool in %s", time.Since(began).Round(time.Millisecond))

	// The statements really ran (or did not): the side effects match.
	var events, itemsLeft int
	if err := raw.QueryRow(`SELECT count(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`SELECT count(*) FROM items WHERE qty = 0`).Scan(&itemsLeft); err != nil {
		t.Fatal(err)
	}
	if itemsLeft != 0 {
		t.Fatalf("%d items have qty 0: a denied UPDATE without WHERE reached the server", itemsLeft)
	}

	got := topicRecords(t, b)
	unique, dups := dedupe(t, got)
	rep := requireVerifies(t, got, pub)
	if !rep.KeyChecked || len(rep.Chains) != 1 {
		t.Fatalf("verification report: key checked %v, %d chains; want the key checked and one chain", rep.KeyChecked, len(rep.Chains))
	}
	if ch := rep.Chains[0]; !ch.Stopped || ch.SignedThrough == 0 || rep.Unsigned() != 0 {
		t.Fatalf("chain %+v, %d unsigned records: want it stopped and signed to its end", ch, rep.Unsigned())
	}

	byTag := map[string]audit.Record{}
	var statements, resumed int
	for _, r := range unique {
		switch r.Kind {
		case audit.KindDelivery:
			resumed++
		case audit.KindStatement:
			statements++
			m := opTag.FindStringSubmatch(r.Statement)
			if m == nil {
				t.Errorf("statement record %s for a statement the test did not issue: %q", r.ID, r.Statement)
				continue
			}
			if prev, ok := byTag[m[1]]; ok {
				t.Errorf("op %s has two records, %s and %s", m[1], prev.ID, r.ID)
				continue
			}
			byTag[m[1]] = r
		}
	}
	if resumed == 0 {
		t.Errorf("no delivery.resumed record: the outage did not interrupt delivery")
	}
	if statements != int(issued.Load()) || len(byTag) != total {
		t.Errorf("the topic holds %d statement records (%d ops), the test issued %d statements", statements, len(byTag), issued.Load())
	}
	var inserts int
	for tag, exp := range expected {
		r, ok := byTag[tag]
		if !ok {
			t.Errorf("op %s (%s by %s): no record on the topic", tag, exp.command, exp.subject)
			continue
		}
		if err := checkRecord(r, exp); err != nil {
			t.Errorf("op %s: %v\nrecord: %s", tag, err, audit.FormatLine(&r))
		}
		if exp.command == "INSERT" {
			inserts++
		}
	}
	if events != inserts {
		t.Errorf("events holds %d rows; the test made %d INSERTs", events, inserts)
	}
	t.Logf("%d records on the topic (%d duplicates), %d statement records, %d checkpoints signed through seq %d",
		len(got), dups, statements, rep.Chains[0].Checkpoints, rep.Chains[0].SignedThrough)
}

// checkRecord compares a statement record with what the test knows.
func checkRecord(r audit.Record, exp expectedRecord) error {
	if r.Identity == nil || r.Identity.Subject != exp.subject || r.Identity.Kind != exp.kind {
		return fmt.Errorf("identity %+v, want %s (%s)", r.Identity, exp.subject, exp.kind)
	}
	switch {
	case exp.onBehalfOf == "" && len(r.OnBehalfOf) != 0:
		return fmt.Errorf("on_behalf_of %+v, want none", r.OnBehalfOf)
	case exp.onBehalfOf != "" && (len(r.OnBehalfOf) != 1 || r.OnBehalfOf[0].Subject != exp.onBehalfOf || r.OnBehalfOf[0].Kind != "human"):
		return fmt.Errorf("on_behalf_of %+v, want %s (human)", r.OnBehalfOf, exp.onBehalfOf)
	}
	if r.Command != exp.command {
		return fmt.Errorf("command %q, want %q", r.Command, exp.command)
	}
	if r.Database != "test" || r.Driver != "lib/pq" || r.Session == "" {
		return fmt.Errorf("database %q, driver %q, session %q; want test, lib/pq and the identity's session", r.Database, r.Driver, r.Session)
	}
	if r.Decision == nil || r.Outcome == nil {
		return fmt.Errorf("decision %+v, outcome %+v: want both", r.Decision, r.Outcome)
	}
	if exp.denied {
		if r.Decision.Effect != "deny" || r.Decision.Rule != exp.rule || r.Outcome.Status != "denied" {
			return fmt.Errorf("decision %+v, outcome %+v; want deny by %s, status denied", *r.Decision, *r.Outcome, exp.rule)
		}
		return nil
	}
	if r.Decision.Effect != "allow" || r.Outcome.Status != "ok" {
		return fmt.Errorf("decision %+v, outcome %+v; want allow, status ok", *r.Decision, *r.Outcome)
	}
	switch exp.command {
	case "SELECT":
		if r.Outcome.RowsReturned != 1 {
			return fmt.Errorf("rows_returned %d, want 1", r.Outcome.RowsReturned)
		}
	case "INSERT", "UPDATE":
		if r.Outcome.RowsAffected != 1 {
			return fmt.Errorf("rows_affected %d, want 1", r.Outcome.RowsAffected)
		}
	}
	return nil
}

// TestAuditEndToEnd_FailClosedRefusesStatements: with fail_mode=closed, a
// tiny spool and the broker down, statements are refused with
// guard.ErrAuditUnavailable once the spool is full, and a refused statement
// never reaches PostgreSQL. A statement the policy denies meanwhile is still
// answered (it must not hang on the full spool). When the broker is back,
// statements run again and every statement that ran is on the topic.
func TestAuditEndToEnd_FailClosedRefusesStatements(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	raw := rawPostgres(t, dsn)
	mustExec(t, raw, `CREATE TABLE ledger (n int PRIMARY KEY)`)

	b := kafkatest.Start(t, e2eTopic, 1)
	db, err := sql.Open(guard.PostgresDriverName, withGuardSettings(t, dsn,
		"guard.audit.brokers", b.Addr(),
		"guard.audit.topic", e2eTopic,
		"guard.audit.spool_dir", t.TempDir(),
		"guard.audit.fail_mode", "closed",
		"guard.audit.spool_max_bytes", "16KiB",
	))
	if err != nil {
		t.Fatalf("sql.Open with audit settings: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			db.Close()
		}
	})
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	// The broker goes away only after Open: with it down while the guard is
	// being built, the first delivery error crashes the process (see
	// TestAuditEndToEnd_BrokerDownAtOpen).
	b.Stop()
	ctx := identity.With(context.Background(), identity.Identity{Subject: "ledger-svc", Kind: identity.Service, Session: "batch-1"})

	answer := func(what, q string, args ...any) error {
		t.Helper()
		return answerWithin(t, b, db, ctx, what, q, args...)
	}

	ran := map[int]bool{}
	var refused []int
	for n := 1; n <= 60 && b.Cluster() == nil; n++ {
		err := answer(fmt.Sprintf("INSERT %d", n), "INSERT INTO ledger (n) VALUES ($1)", n)
		switch {
		case err == nil:
			ran[n] = true
		case errors.Is(err, guard.ErrAuditUnavailable):
			if errors.Is(err, guard.ErrDenied) {
				t.Fatalf("INSERT %d: a refusal for want of audit also claims to be a policy denial: %v", n, err)
			}
			refused = append(refused, n)
		default:
			t.Fatalf("INSERT %d: %v; want success or guard.ErrAuditUnavailable", n, err)
		}
	}
	if b.Cluster() == nil {
		if len(refused) == 0 {
			t.Fatalf("60 INSERTs ran with the broker down and a 16 KiB fail-closed spool; none was refused")
		}
		if !slicesContain(refused, 60) {
			t.Fatalf("INSERT 60 ran although earlier ones were refused and the broker is still down (refused %v)", refused)
		}
	}
	t.Logf("%d INSERTs ran before the spool filled, %d refused", len(ran), len(refused))

	// The side door: exactly the statements that were let through reached
	// the server.
	rows, err := raw.Query(`SELECT n FROM ledger ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[int]bool{}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		inTable[n] = true
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range refused {
		if inTable[n] {
			t.Errorf("INSERT %d was refused with ErrAuditUnavailable but its row is in the table", n)
		}
	}
	for n := range ran {
		if !inTable[n] {
			t.Errorf("INSERT %d succeeded but its row is not in the table", n)
		}
	}

	// Statements the policy denies while the spool is full: each caller
	// must get an answer (a denial or a refusal), not wait for the broker.
	for i := range 4 {
		if b.Cluster() != nil {
			break
		}
		err := answer(fmt.Sprintf("DROP TABLE (denied by policy, attempt %d)", i+1), "DROP TABLE ledger")
		if !errors.Is(err, guard.ErrDenied) && !errors.Is(err, guard.ErrAuditUnavailable) {
			t.Errorf("DROP TABLE with a full fail-closed spool: err = %v, want guard.ErrDenied or guard.ErrAuditUnavailable", err)
		}
	}

	// The broker comes back: the spool drains and statements run again.
	if b.Cluster() == nil {
		b.Restart()
	}
	back := 0
	for n := 1000; back == 0; n++ {
		_, err := db.ExecContext(ctx, "INSERT INTO ledger (n) VALUES ($1)", n)
		switch {
		case err == nil:
			back = n
			ran[n] = true
		case errors.Is(err, guard.ErrAuditUnavailable):
			if n > 1000+600 {
				t.Fatalf("statements still refused after the broker came back: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		default:
			t.Fatalf("INSERT %d after the broker came back: %v", n, err)
		}
	}
	closed = true
	if err := db.Close(); err != nil {
		t.Fatalf("DB.Close did not drain the audit trail: %v", err)
	}
	recs, _ := dedupe(t, topicRecords(t, b))
	requireVerifies(t, recs, nil)
	recorded := map[string]bool{}
	for _, r := range recs {
		if r.Kind == audit.KindStatement && r.Outcome != nil && r.Outcome.Status == "ok" && r.Command == "INSERT" {
			recorded[r.ID] = true
		}
	}
	if len(recorded) != len(ran) {
		t.Errorf("%d INSERTs ran, the topic holds %d records of successful INSERTs", len(ran), len(recorded))
	}
}

// answerWithin runs one statement and waits for its answer. In fail-closed
// mode a caller must get an answer, never wait on the broker; a statement
// that gets none in 15s is reported, and the broker is brought back so the
// test can go on.
func answerWithin(t *testing.T, b *kafkatest.Broker, db *sql.DB, ctx context.Context, what, q string, args ...any) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, q, args...)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
	}
	t.Errorf("%s got no answer in 15s with a fail-closed spool and the broker down: "+
		"the caller hangs instead of being refused", what)
	if b.Cluster() == nil {
		b.Restart()
	}
	return <-done
}

// TestAuditEndToEnd_FailClosedAdmittedStatementAnswered: with a spool
// bound smaller than a handful of records, a statement admitted just below
// the bound runs and then must still be answered; fail-closed mode may
// refuse the next statement, never leave this caller waiting for the broker.
func TestAuditEndToEnd_FailClosedAdmittedStatementAnswered(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	raw := rawPostgres(t, dsn)
	mustExec(t, raw, `CREATE TABLE ledger (n int PRIMARY KEY, note text)`)
	b := kafkatest.Start(t, e2eTopic, 1)
	db, err := sql.Open(guard.PostgresDriverName, withGuardSettings(t, dsn,
		"guard.audit.brokers", b.Addr(),
		"guard.audit.topic", e2eTopic,
		"guard.audit.spool_dir", t.TempDir(),
		"guard.audit.fail_mode", "closed",
		"guard.audit.spool_max_bytes", "4KiB",
	))
	if err != nil {
		t.Fatalf("sql.Open with audit settings: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	b.Stop() // after Open: see TestAuditEndToEnd_BrokerDownAtOpen
	ctx := identity.With(context.Background(), identity.Identity{Subject: "ledger-svc", Kind: identity.Service})
	// A statement of about 2 KB (a wide row written as literals): its
	// record is more than the eighth of the bound that fail-closed mode
	// lets admitted statements add past it.
	note := strings.Repeat("audit trail test note ", 100)
	refused := 0
	for n := 1; n <= 30 && b.Cluster() == nil; n++ {
		err := answerWithin(t, b, db, ctx, fmt.Sprintf("INSERT %d (admitted: the spool was below its bound)", n),
			"INSERT INTO ledger (n, note) VALUES ($1, '"+note+"')", n)
		switch {
		case err == nil:
		case errors.Is(err, guard.ErrAuditUnavailable):
			refused++
		default:
			t.Fatalf("INSERT %d: %v; want success or guard.ErrAuditUnavailable", n, err)
		}
	}
	var rowsIn int
	if err := raw.QueryRow(`SELECT count(*) FROM ledger`).Scan(&rowsIn); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows reached the table, %d INSERTs refused", rowsIn, refused)
	if b.Cluster() == nil && refused == 0 {
		t.Fatal("30 INSERTs ran with the broker down and a 4 KiB fail-closed spool; none was refused")
	}
}

func slicesContain(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestAuditEndToEnd_MaskedColumnsRecorded: a read of a table with an email
// column returns masked emails, and the record that reaches the audit sink
// (here the guard.audit.file JSON-lines sink) names the masked column, its
// class and how many cells were masked.
func TestAuditEndToEnd_MaskedColumnsRecorded(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	raw := rawPostgres(t, dsn)
	mustExec(t, raw, `CREATE TABLE customers (id int PRIMARY KEY, name text, email text)`)
	emails := []string{"ann@example.com", "ben@example.org", "cho@example.net", "dev@example.com", "eve@example.io"}
	for i, e := range emails {
		mustExec(t, raw, `INSERT INTO customers VALUES ($1, $2, $3)`, i+1, fmt.Sprintf("customer %d", i+1), e)
	}
	mustExec(t, raw, `INSERT INTO customers VALUES (6, 'no mail', NULL)`)

	file := filepath.Join(t.TempDir(), "audit.jsonl")
	db, err := sql.Open(guard.PostgresDriverName, withGuardSettings(t, dsn,
		"guard.audit.file", file,
		"guard.audit.spool_dir", t.TempDir(),
	))
	if err != nil {
		t.Fatalf("sql.Open with audit settings: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			db.Close()
		}
	})
	ctx := identity.With(context.Background(), identity.Identity{Subject: "copilot-7", Kind: identity.Agent, OnBehalfOf: &alice})
	const q = "SELECT id, email FROM customers ORDER BY id"
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var id int
		var email sql.NullString
		if err := rows.Scan(&id, &email); err != nil {
			t.Fatal(err)
		}
		if id <= len(emails) {
			if !email.Valid || email.String == emails[id-1] {
				t.Errorf("row %d: email %+v reached the caller unmasked (stored %q)", id, email, emails[id-1])
			}
		}
		n++
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Fatalf("read %d rows, want 6", n)
	}
	closed = true
	if err := db.Close(); err != nil {
		t.Fatalf("DB.Close did not drain the audit trail: %v", err)
	}

	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []audit.Record
	for r, err := range audit.ReadRecords(f) {
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		recs = append(recs, *r)
	}
	requireVerifies(t, recs, nil)
	var found *audit.Record
	for i := range recs {
		if recs[i].Kind == audit.KindStatement && recs[i].Statement == q {
			if found != nil {
				t.Fatalf("two records for one query: %s and %s", found.ID, recs[i].ID)
			}
			found = &recs[i]
		}
	}
	if found == nil {
		t.Fatalf("no record of %q among %d records in the file", q, len(recs))
	}
	if found.Outcome == nil || found.Outcome.RowsReturned != 6 {
		t.Errorf("outcome %+v, want 6 rows returned", found.Outcome)
	}
	var email *audit.MaskedColumn
	for i := range found.Masked {
		if found.Masked[i].Column == "email" {
			email = &found.Masked[i]
		} else {
			t.Errorf("column %q recorded as masked; only email was", found.Masked[i].Column)
		}
	}
	if email == nil {
		t.Fatalf("record names no masked email column: masked = %+v\nrecord: %s", found.Masked, audit.FormatLine(found))
	}
	if email.Class != "email" || email.Cells != int64(len(emails)) || email.Strategy == "" {
		t.Errorf("masked column %+v, want class email, %d cells (the NULL is not a masked cell) and its strategy", *email, len(emails))
	}
}

// TestAuditEndToEnd_BadSettingNamed: a bad audit setting fails Open (or the
// first use, for a connector) with a configuration error naming the setting,
// whether it comes from the DSN or the environment.
func TestAuditEndToEnd_BadSettingNamed(t *testing.T) {
	dsn := testdb.PostgresDSN(t)
	spool := t.TempDir()
	check := func(t *testing.T, err error, names ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		if !errors.Is(err, guard.ErrConfig) {
			t.Errorf("err = %v; want errors.Is(err, guard.ErrConfig)", err)
		}
		var ce *guard.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("err = %v (%T); want a *guard.ConfigError", err, err)
		}
		for _, n := range names {
			if strings.Contains(err.Error(), n) {
				return
			}
		}
		t.Errorf("err = %q; want it to name %s", err, strings.Join(names, " or "))
	}
	openErr := func(t *testing.T, kv ...string) error {
		t.Helper()
		db, err := sql.Open(guard.PostgresDriverName, withGuardSettings(t, dsn, kv...))
		if err != nil {
			return err
		}
		defer db.Close()
		return db.Ping()
	}

	t.Run("fail_mode in DSN", func(t *testing.T) {
		err := openErr(t, "guard.audit.fail_mode", "sometimes", "guard.audit.spool_dir", spool, "guard.audit.file", filepath.Join(spool, "a.jsonl"))
		check(t, err, "guard.audit.fail_mode")
		var ce *guard.ConfigError
		if errors.As(err, &ce) && (ce.Setting != "guard.audit.fail_mode" || ce.Value != "sometimes") {
			t.Errorf("ConfigError names %s=%q; want guard.audit.fail_mode=\"sometimes\"", ce.Setting, ce.Value)
		}
	})
	t.Run("misspelled key in DSN", func(t *testing.T) {
		check(t, openErr(t, "guard.audit.spool_dirr", spool), "guard.audit.spool_dirr")
	})
	t.Run("spool_max_bytes in DSN", func(t *testing.T) {
		check(t, openErr(t, "guard.audit.spool_max_bytes", "lots", "guard.audit.spool_dir", spool, "guard.audit.file", filepath.Join(spool, "b.jsonl")),
			"guard.audit.spool_max_bytes")
	})
	t.Run("brokers without spool_dir", func(t *testing.T) {
		// A sink and no spool directory: the error must say which setting
		// to add, in the user's terms.
		check(t, openErr(t, "guard.audit.brokers", "127.0.0.1:9", "guard.audit.topic", e2eTopic), "guard.audit.spool_dir")
	})
	t.Run("fail_mode in the environment, connector", func(t *testing.T) {
		t.Setenv("GUARD_AUDIT_FAIL_MODE", "sometimes")
		t.Setenv("GUARD_AUDIT_SPOOL_DIR", spool)
		t.Setenv("GUARD_AUDIT_FILE", filepath.Join(spool, "c.jsonl"))
		c, err := pq.NewConnector(dsn)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(guard.NewConnector(c))
		defer db.Close()
		err = db.Ping()
		check(t, err, "GUARD_AUDIT_FAIL_MODE", "guard.audit.fail_mode")
		t.Logf("error: %v", err)
	})
}

// TestAuditEndToEnd_BrokerDownAtOpen: opening the guard while the broker is
// unreachable must work (records wait in the spool). It runs in a child
// process because the failure it guards against is a crash of the whole
// process.
func TestAuditEndToEnd_BrokerDownAtOpen(t *testing.T) {
	if os.Getenv("GUARD_E2E_BROKER_DOWN_CHILD") == "1" {
		brokerDownChild(t)
		return
	}
	b := kafkatest.Start(t, e2eTopic, 1)
	addr := b.Addr()
	b.Stop()
	dsn := testdb.PostgresDSN(t)
	for i := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestAuditEndToEnd_BrokerDownAtOpen$", "-test.count=1")
		cmd.Env = append(os.Environ(), "GUARD_E2E_BROKER_DOWN_CHILD=1",
			"GUARD_E2E_DSN="+dsn, "GUARD_E2E_BROKER="+addr, "GUARD_E2E_SPOOL="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("run %d: a process that opened the guard with the broker down failed: %v\n%s", i+1, err, crashReport(string(out)))
			break
		}
	}
}

func brokerDownChild(t *testing.T) {
	db, err := sql.Open(guard.PostgresDriverName, withGuardSettings(t, os.Getenv("GUARD_E2E_DSN"),
		"guard.audit.brokers", os.Getenv("GUARD_E2E_BROKER"),
		"guard.audit.topic", e2eTopic,
		"guard.audit.spool_dir", os.Getenv("GUARD_E2E_SPOOL"),
	))
	if err != nil {
		t.Fatal(err)
	}
	// An application that opens its pool at start-up and serves its first
	// request a moment later, while the shipper finds the broker down.
	time.Sleep(300 * time.Millisecond)
	ctx := identity.With(context.Background(), identity.Identity{Subject: "app", Kind: identity.Service})
	for range 5 {
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// No db.Close: with the broker still down it would wait out its drain
	// deadline; the records stay in the spool either way.
}

// crashReport keeps the part of a child's output that says what went
// wrong: the first data race or panic, else the end.
func crashReport(s string) string {
	for _, mark := range []string{"WARNING: DATA RACE", "panic: "} {
		if i := strings.Index(s, mark); i >= 0 {
			s = s[i:]
			if len(s) > 1500 {
				s = s[:1500] + "..."
			}
			return s
		}
	}
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

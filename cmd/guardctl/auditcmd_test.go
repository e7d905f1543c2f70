package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/internal/kafkatest"
)

func writeTrail(t *testing.T, cfg audit.Config, n int) {
	t.Helper()
	l, err := audit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		rec := &audit.Record{
			Identity:   &audit.Principal{Subject: "copilot-7", Kind: "agent"},
			OnBehalfOf: []audit.Principal{{Subject: "alice@example.com"}},
			Statement:  fmt.Sprintf("SELECT id, email FROM customers WHERE id = %d", i),
			Command:    "SELECT", Effect: "read", Objects: []string{"public.customers"},
			Decision: &audit.Decision{Effect: "allow", Rule: "agents-read"},
			Outcome:  &audit.Outcome{Status: "ok", RowsReturned: 1},
			Masked:   []audit.MaskedColumn{{Column: "email", Cells: 1}},
		}
		if i%5 == 4 {
			rec.Statement, rec.Command, rec.Effect = "DROP TABLE customers", "DROP TABLE", "ddl"
			rec.Decision = &audit.Decision{Effect: "deny", Rule: "no-ddl", Message: "agents may not drop tables"}
			rec.Outcome = &audit.Outcome{Status: "denied"}
			rec.Masked = nil
		}
		if err := l.Emit(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.Close(cctx); err != nil {
		t.Fatal(err)
	}
}

func keyFiles(t *testing.T) (ed25519.PrivateKey, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{42}, 32))
	path := filepath.Join(t.TempDir(), "audit.pub")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(priv.Public().(ed25519.PublicKey))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return priv, path
}

func guardctl(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditVerifyFile(t *testing.T) {
	priv, pubPath := keyFiles(t)
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	writeTrail(t, audit.Config{SpoolDir: t.TempDir(), File: file, SigningKey: priv, CheckpointEvery: 10}, 30)

	code, out, errs := guardctl("audit", "verify", "--file", file, "--key", pubPath)
	if code != 0 || !strings.Contains(out, "OK:") {
		t.Fatalf("verify of a genuine trail: exit %d\n%s%s", code, out, errs)
	}

	b, _ := os.ReadFile(file)
	tampered := strings.Replace(string(b), "WHERE id = 7", "WHERE id = 8", 1)
	if tampered == string(b) {
		t.Fatal("test did not find the text to tamper with")
	}
	os.WriteFile(file, []byte(tampered), 0o600)
	code, out, _ = guardctl("audit", "verify", "--file", file, "--key", pubPath)
	if code != 1 || !strings.Contains(out, "modified") {
		t.Fatalf("verify of a tampered trail: exit %d\n%s", code, out)
	}

	code, _, errs = guardctl("audit", "verify", "--file", file, "--key", "not-a-key")
	if code != 2 || !strings.Contains(errs, "--key") {
		t.Fatalf("bad key: exit %d, %s", code, errs)
	}
}

func TestAuditTailFilters(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	writeTrail(t, audit.Config{SpoolDir: t.TempDir(), File: file}, 20)

	code, out, errs := guardctl("audit", "tail", "--file", file, "--effect", "deny")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want the 4 denied statements, got %d lines:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.Contains(l, "copilot-7 for alice@example.com deny(no-ddl) DROP TABLE") || !strings.Contains(l, `"DROP TABLE customers"`) {
			t.Fatalf("line does not read as a denied drop: %s", l)
		}
	}
	_, out, _ = guardctl("audit", "tail", "--file", file, "--identity", "alice@example.com", "--table", "customers", "--effect", "allow")
	if n := strings.Count(out, "\n"); n != 16 {
		t.Fatalf("want 16 allowed reads of customers for alice, got %d:\n%s", n, out)
	}
	_, out, _ = guardctl("audit", "tail", "--file", file, "--identity", "mallory")
	if out != "" {
		t.Fatalf("filter by an absent identity printed:\n%s", out)
	}
	if code, _, _ := guardctl("audit", "tail"); code != 2 {
		t.Fatalf("tail without a source: exit %d", code)
	}
}

func TestAuditVerifyKafka(t *testing.T) {
	b := kafkatest.Start(t, "guard.audit", 2)
	priv, pubPath := keyFiles(t)
	writeTrail(t, audit.Config{SpoolDir: t.TempDir(), SigningKey: priv,
		Kafka: audit.KafkaConfig{Brokers: []string{b.Addr()}, Topic: "guard.audit"}}, 50)
	code, out, errs := guardctl("audit", "verify", "--brokers", b.Addr(), "--topic", "guard.audit", "--key", pubPath)
	if code != 0 || !strings.Contains(out, "53 records") {
		t.Fatalf("verify from Kafka: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = guardctl("audit", "tail", "--brokers", b.Addr(), "--topic", "guard.audit", "--effect", "deny")
	if code != 0 || strings.Count(out, "\n") != 10 {
		t.Fatalf("tail from Kafka: exit %d\n%s%s", code, out, errs)
	}
}

// lineWatcher is a stdout that cancels the command once it printed n lines.
type lineWatcher struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Count(w.buf.String(), "\n") >= w.n {
		w.cancel()
	}
	return len(p), nil
}

// TestAuditTailFollowFile: tail --follow prints records appended to the
// file after it started.
func TestAuditTailFollowFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	writeTrail(t, audit.Config{SpoolDir: t.TempDir(), File: file}, 5) // 7 records
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	old := auditContext
	auditContext = func() (context.Context, context.CancelFunc) { return ctx, cancel }
	defer func() { auditContext = old }()

	out := &lineWatcher{n: 14, cancel: cancel}
	done := make(chan int)
	go func() { done <- run([]string{"audit", "tail", "--file", file, "--follow"}, out, io.Discard) }()
	writeTrail(t, audit.Config{SpoolDir: t.TempDir(), File: file}, 5) // 7 more, from another chain
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if got := strings.Count(out.buf.String(), "guard.start"); got != 2 {
		t.Fatalf("want both chains' start records, got %d:\n%s", got, out.buf.String())
	}
}

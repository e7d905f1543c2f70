package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/guardedsql/guard/internal/kafkatest"
)

// collectSink keeps every delivered message; while gate is closed (blocked)
// it fails every write, so records stay in the spool.
type collectSink struct {
	mu      sync.Mutex
	msgs    []Message
	blocked bool
	writes  int
}

var errBlocked = errors.New("test sink blocked")

func (c *collectSink) Write(_ context.Context, batch []Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.blocked {
		return errBlocked
	}
	for _, m := range batch {
		m.JSON = append([]byte(nil), m.JSON...)
		c.msgs = append(c.msgs, m)
	}
	return nil
}

func (c *collectSink) Close() error { return nil }

func (c *collectSink) setBlocked(b bool) {
	c.mu.Lock()
	c.blocked = b
	c.mu.Unlock()
}

func (c *collectSink) records(t testing.TB) []Record {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Record, 0, len(c.msgs))
	for _, m := range c.msgs {
		r, err := DecodeRecord(m.JSON)
		if err != nil {
			t.Fatalf("delivered message is not a record: %v", err)
		}
		out = append(out, *r)
	}
	return out
}

func testKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "guard audit test signing key....")
	priv := ed25519.NewKeyFromSeed(seed)
	return priv.Public().(ed25519.PublicKey), priv
}

func statement(i int) *Record {
	return &Record{
		Kind:       KindStatement,
		Identity:   &Principal{Subject: "copilot-7", Kind: "agent"},
		OnBehalfOf: []Principal{{Subject: "alice@example.com", Kind: "human"}},
		Session:    "s-1",
		Database:   "test",
		Driver:     "postgres",
		Request:    "query",
		Statement:  fmt.Sprintf("SELECT id, email FROM customers WHERE id = %d", i),
		Command:    "SELECT",
		Effect:     "read",
		Objects:    []string{"public.customers"},
		Decision:   &Decision{Effect: "allow", Rule: "agents-read"},
		Outcome:    &Outcome{Status: "ok", RowsReturned: 1},
		Masked:     []MaskedColumn{{Column: "email", Class: "email", Strategy: "partial", Cells: 1}},
	}
}

// kafkaRecords reads the topic back and decodes every message, checking the
// CloudEvents headers and the key on the way.
func kafkaRecords(t *testing.T, b *kafkatest.Broker, topic string) []Record {
	t.Helper()
	msgs := b.Consume(t, topic)
	out := make([]Record, 0, len(msgs))
	for _, m := range msgs {
		r, err := DecodeRecord(m.Value)
		if err != nil {
			t.Fatalf("message at %d/%d is not a record: %v", m.Partition, m.Offset, err)
		}
		if m.Headers["ce_id"] != r.ID || m.Headers["ce_specversion"] != "1.0" ||
			m.Headers["ce_type"] != EventTypePrefix+string(r.Kind) || m.Headers["ce_source"] == "" {
			t.Fatalf("message %s has CloudEvents headers %v", r.ID, m.Headers)
		}
		if string(m.Key) != r.Chain.ID {
			t.Fatalf("message %s keyed %q, want its chain id %q", r.ID, m.Key, r.Chain.ID)
		}
		out = append(out, *r)
	}
	return out
}

// requireAll checks that every emitted record (id -> hash) is among got,
// with the same hash, and returns how many extra copies got holds.
func requireAll(t *testing.T, emitted map[string]string, got []Record) (dups int) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range got {
		seen[r.ID]++
		if h, ok := emitted[r.ID]; ok && h != r.Chain.Hash {
			t.Fatalf("record %s delivered with hash %s, emitted with %s", r.ID, r.Chain.Hash, h)
		}
	}
	missing := 0
	for id := range emitted {
		if seen[id] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d emitted records never delivered", missing, len(emitted))
	}
	for _, n := range seen {
		dups += n - 1
	}
	return dups
}

func requireVerified(t *testing.T, recs []Record, pub ed25519.PublicKey) Report {
	t.Helper()
	rep, err := Verify(RecordsOf(recs), pub)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		for i, p := range rep.Problems {
			if i == 10 {
				break
			}
			t.Log(p)
		}
		t.Fatalf("verification found %d problems", len(rep.Problems))
	}
	return rep
}

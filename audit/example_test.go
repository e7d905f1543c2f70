package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/guardedsql/guard/audit"
)

// A Logger writing JSON lines to a buffer, with signed checkpoints; the
// trail is then verified with the public key.
func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))

	var trail bytes.Buffer
	l, err := audit.New(audit.Config{
		SpoolDir:   dir,
		Sinks:      []audit.Sink{audit.NewWriterSink(&trail)},
		SigningKey: key,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := l.Admit(ctx); err != nil {
		fmt.Println("refused:", err)
		return
	}
	rec := &audit.Record{
		Kind:      audit.KindStatement,
		Identity:  &audit.Principal{Subject: "copilot-7", Kind: "agent"},
		Statement: "SELECT id, email FROM customers",
		Command:   "SELECT",
		Objects:   []string{"public.customers"},
		Decision:  &audit.Decision{Effect: "allow"},
		Outcome:   &audit.Outcome{Status: "ok", RowsReturned: 3},
	}
	if err := l.Emit(ctx, rec); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("sequence:", rec.Chain.Sequence)

	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.Close(closeCtx); err != nil {
		fmt.Println(err)
		return
	}
	rep, err := audit.VerifyReader(&trail, key.Public().(ed25519.PublicKey))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("records:", rep.Records, "ok:", rep.OK(), "unsigned:", rep.Unsigned())
	// Output:
	// sequence: 2
	// records: 4 ok: true unsigned: 0
}

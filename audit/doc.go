// Package audit holds guard's audit trail: the record schema (one Record
// per statement attempt and per event in the guard's own life), a durable
// local spool, sinks (Kafka, JSON-lines file, any io.Writer), a SHA-256
// hash chain with Ed25519-signed checkpoints, and Verify, which proves a
// trail read back from Kafka or a file was not modified, cut or reordered.
//
// The statement path only appends: Logger.Emit encodes the record, links
// it into the process's chain and writes it to the spool (the bytes reach
// the kernel before Emit returns; fsync is grouped). One shipper goroutine
// sends the spool to every sink in order with synchronous, acks=all Kafka
// writes and marks records delivered only after they are acknowledged. A
// broker outage or a crash leaves records in the spool; they are sent
// when the broker is back or the next process opens the same directory.
// Delivery is at least once: a retried batch may appear twice, with the
// same id and hash, and Verify counts such duplicates without complaint.
//
// When the spool is full, Emit waits for space (FailBlock, the default),
// or, in FailClosed mode, Admit refuses new statements with an error
// wrapping ErrUnavailable. Nothing is dropped.
//
//	l, err := audit.New(audit.Config{
//		SpoolDir:   "/var/lib/guard/audit",
//		Kafka:      audit.KafkaConfig{Brokers: []string{"kafka-1:9092"}, Topic: "guard.audit"},
//		SigningKey: key, // ed25519.PrivateKey: checkpoints every 1000 records or 10s
//	})
//	if err != nil { ... }
//	defer l.Close(shutdownCtx)
//	if err := l.Admit(ctx); err != nil { return err } // fail-closed refusal
//	// ... run the statement ...
//	err = l.Emit(ctx, &audit.Record{Kind: audit.KindStatement, Statement: q, ...})
//
// Reading back: Verify(KafkaRecords(ctx, cfg, false), pub) or
// VerifyReader(file, pub); guardctl audit verify and guardctl audit tail
// wrap both. docs/audit.md documents every field and its mapping onto OCSF
// and pgaudit.
package audit

package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/guardedsql/guard/internal/kafkatest"
)

const topic = "guard.audit"

// TestDeliveryThroughBrokerOutage is the main delivery claim: 16
// goroutines emit 20,000 statement records while the broker is down for 10
// seconds in the middle; afterwards the topic holds every record as
// emitted and the chain verifies.
func TestDeliveryThroughBrokerOutage(t *testing.T) {
	b := kafkatest.Start(t, topic, 3)
	pub, priv := testKey(t)
	var errs atomic.Int64
	l, err := New(Config{
		SpoolDir:   t.TempDir(),
		Kafka:      KafkaConfig{Brokers: []string{b.Addr()}, Topic: topic, WriteTimeout: 2 * time.Second},
		SigningKey: priv,
		RetryMax:   300 * time.Millisecond,
		OnError:    func(error) { errs.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}

	const workers, total = 16, 20000
	var (
		mu      sync.Mutex
		emitted = make(map[string]string, total)
		count   atomic.Int64
		wg      sync.WaitGroup
	)
	outageDone := make(chan struct{})
	var down atomic.Bool
	go func() {
		defer close(outageDone)
		for count.Load() < total/4 {
			time.Sleep(5 * time.Millisecond)
		}
		down.Store(true)
		b.Stop()
		time.Sleep(10 * time.Second)
		b.Restart()
		down.Store(false)
	}()
	ctx := context.Background()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range total / workers {
				rec := statement(w*100000 + i)
				if err := l.Admit(ctx); err != nil {
					t.Error(err)
					return
				}
				if err := l.Emit(ctx, rec); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				emitted[rec.ID] = rec.Chain.Hash
				mu.Unlock()
				count.Add(1)
				// Keep statements arriving through the whole outage, as a
				// live service would, rather than finishing before it.
				if down.Load() {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	began := time.Now()
	wg.Wait()
	t.Logf("emitted in %s", time.Since(began).Round(time.Millisecond))
	<-outageDone
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := l.Close(cctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("delivered in %s", time.Since(began).Round(time.Millisecond))
	if len(emitted) != total {
		t.Fatalf("emitted %d records, want %d", len(emitted), total)
	}
	if errs.Load() == 0 {
		t.Fatal("the shipper saw no delivery error: the broker outage did not happen")
	}
	got := kafkaRecords(t, b, topic)
	t.Logf("consumed in %s", time.Since(began).Round(time.Millisecond))
	dups := requireAll(t, emitted, got)
	rep := requireVerified(t, got, pub)
	var resumed, stops int
	for _, r := range got {
		switch r.Kind {
		case KindDelivery:
			resumed++
		case KindStop:
			stops++
		}
	}
	if resumed == 0 || stops == 0 {
		t.Fatalf("want delivery.resumed and guard.stop records, got %d and %d", resumed, stops)
	}
	if len(rep.Chains) != 1 || rep.Chains[0].SignedThrough == 0 || rep.Unsigned() != 0 {
		t.Fatalf("chain report %+v, unsigned %d: want one chain signed to its end", rep.Chains, rep.Unsigned())
	}
	t.Logf("%d records on the topic, %d duplicates, %d delivery errors during the outage", len(got), dups, errs.Load())
}

// TestBrokerStoresBatchThenFails: the broker appends a batch and answers
// with an error (NOT_ENOUGH_REPLICAS_AFTER_APPEND, which kfake applies
// before failing); the retry duplicates the batch and verification still
// passes with no id missing.
func TestBrokerStoresBatchThenFails(t *testing.T) {
	b := kafkatest.Start(t, topic, 1)
	pub, priv := testKey(t)
	c := b.Cluster()
	fh := c.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Topic: topic,
		Err:   kerr.NotEnoughReplicasAfterAppend,
		Count: 3,
	})
	l, err := New(Config{
		SpoolDir:        t.TempDir(),
		Kafka:           KafkaConfig{Brokers: []string{b.Addr()}, Topic: topic},
		SigningKey:      priv,
		CheckpointEvery: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	emitted := map[string]string{}
	for i := range 500 {
		rec := statement(i)
		if err := l.Emit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		emitted[rec.ID] = rec.Chain.Hash
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if fh.Hits() == 0 {
		t.Fatal("the fault never fired")
	}
	got := kafkaRecords(t, b, topic)
	dups := requireAll(t, emitted, got)
	if dups == 0 {
		t.Fatal("want duplicates from the stored-then-failed batch, found none")
	}
	rep := requireVerified(t, got, pub)
	if rep.Duplicates != dups {
		t.Fatalf("Verify counted %d duplicates, the topic holds %d", rep.Duplicates, dups)
	}
	t.Logf("%d records on the topic, %d duplicates", len(got), dups)
}

// TestOversizedRecordStillShips: a statement of megabytes and a huge
// object list are cut so the record fits one Kafka message; the shipper
// does not wedge on it and the records after it arrive.
func TestOversizedRecordStillShips(t *testing.T) {
	b := kafkatest.Start(t, topic, 1)
	l, err := New(Config{SpoolDir: t.TempDir(), Kafka: KafkaConfig{Brokers: []string{b.Addr()}, Topic: topic}})
	if err != nil {
		t.Fatal(err)
	}
	big := statement(0)
	big.Statement = "INSERT INTO t VALUES " + strings.Repeat("('ü', 1),", 30000)
	for i := range 70000 {
		big.Objects = append(big.Objects, fmt.Sprintf("public.t%d", i))
	}
	after := statement(1)
	ctx := context.Background()
	if err := l.Emit(ctx, big); err != nil {
		t.Fatal(err)
	}
	if err := l.Emit(ctx, after); err != nil {
		t.Fatal(err)
	}
	if len(big.Objects) > 64 || !strings.Contains(big.Detail, "shortened") {
		t.Fatalf("object list not cut: %d objects, detail %q", len(big.Objects), big.Detail)
	}
	if big.StatementLen <= len(big.Statement) || !utf8.ValidString(big.Statement) {
		t.Fatalf("statement not cut cleanly: len %d, recorded length %d", len(big.Statement), big.StatementLen)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.Close(cctx); err != nil {
		t.Fatal(err)
	}
	got := kafkaRecords(t, b, topic)
	requireAll(t, map[string]string{big.ID: big.Chain.Hash, after.ID: after.Chain.Hash}, got)
	requireVerified(t, got, nil)
}

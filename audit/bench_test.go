package audit

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/guardedsql/guard/internal/kafkatest"
)

// BenchmarkEmit is the cost audit adds to one statement: Emit on the
// statement path (encode, chain, append to the spool), from parallel
// goroutines, with a sink that keeps up.
func BenchmarkEmit(b *testing.B) {
	l, err := New(Config{SpoolDir: b.TempDir(), Sinks: []Sink{NewWriterSink(io.Discard)}, SyncInterval: benchSync})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := l.Emit(ctx, statement(i)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	// CPU time the process spent per record (statement path plus the
	// shipper), which a loaded shared machine distorts less than wall time.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	closeWithin(b, l, time.Minute)
}

// BenchmarkEmitSerial is Emit's latency as one connection sees it: one
// goroutine, so no other emitter shares its write().
func BenchmarkEmitSerial(b *testing.B) {
	l, err := New(Config{SpoolDir: b.TempDir(), Sinks: []Sink{NewWriterSink(io.Discard)}, SyncInterval: benchSync})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	recs := make([]*Record, 1024)
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		// The records are built outside the measured loop body's cost
		// as far as possible: only Emit is the guard's.
		if i%len(recs) == 0 {
			b.StopTimer()
			for j := range recs {
				recs[j] = statement(i + j)
			}
			b.StartTimer()
		}
		if err := l.Emit(ctx, recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	closeWithin(b, l, time.Minute)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeliveryToKafka is records per second from Emit through the
// spool and the shipper to an acknowledged write on a kfake broker: the
// clock stops when Close has seen every record acknowledged. 16
// goroutines emit (as 16 busy connections would), so spool writes group.
func BenchmarkDeliveryToKafka(b *testing.B) {
	br := kafkatest.Start(b, topic, 1)
	l, err := New(Config{SpoolDir: b.TempDir(), Kafka: KafkaConfig{Brokers: []string{br.Addr()}, Topic: topic}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := l.Emit(ctx, statement(i)); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	emitted := time.Since(start)
	backlog := l.Pending()
	if err := closeWithin(b, l, 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if testing.Verbose() {
		b.Logf("%d records: emitted in %s, backlog %d bytes then, delivered at %s", b.N, emitted, backlog, time.Since(start))
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
	// Includes the in-process broker's work.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

var benchSync = time.Hour

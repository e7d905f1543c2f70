// Package kafkatest runs an in-process Kafka broker (kfake) on loopback for
// tests, and lets a test stop it, restart it on the same port with its data,
// make it fail, and read back everything a topic holds.
//
// The log survives a restart the way a real broker's does, but not through
// kfake's DataDir: that persistence rewrites state so often that with tens
// of thousands of records the broker stops answering on a loaded machine.
// Instead Stop reads every topic back before closing, and Consume returns
// what earlier incarnations held followed by what the running one holds.
//
//	b := kafkatest.Start(t, "audit", 1)
//	// ... produce to b.Addr() ...
//	msgs := b.Consume(t, "audit")
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker is one kfake node with its data in a test temporary directory,
// so that Stop and Restart behave like a real broker going away and coming
// back with its log.
type Broker struct {
	tb     testing.TB
	port   int
	dir    string
	opts   []kfake.Opt
	mu     sync.Mutex
	c      *kfake.Cluster
	topics map[string]int32
	saved  map[string][]Message
}

// Start starts a broker with topic created with the given partitions.
// The broker is closed when the test ends.
func Start(tb testing.TB, topic string, partitions int32, opts ...kfake.Opt) *Broker {
	tb.Helper()
	port, err := freePort()
	if err != nil {
		tb.Fatalf("kafkatest: no free loopback port: %v", err)
	}
	b := &Broker{tb: tb, port: port, opts: opts, topics: map[string]int32{topic: partitions}, saved: map[string][]Message{}}
	b.start()
	tb.Cleanup(b.close)
	return b
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *Broker) start() {
	b.tb.Helper()
	opts := append([]kfake.Opt{
		// kfake keeps each log segment in one in-memory byte slice that
		// grows by doubling; at its 100 MiB default, copying and zeroing
		// those slices cost the broker more than the records themselves,
		// which a real broker appending to files does not pay. Small
		// segments keep the test broker's cost per record flat.
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(4 << 20)}),
		kfake.Ports(b.port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, fmt.Sprintf("127.0.0.1:%d", b.port))
		}),
	}, b.opts...)
	for t, p := range b.topics {
		opts = append(opts, kfake.SeedTopics(p, t))
	}
	var c *kfake.Cluster
	var err error
	// The old listener's port may take a moment to be free again.
	for i := 0; i < 100; i++ {
		if c, err = kfake.NewCluster(opts...); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		b.tb.Fatalf("kafkatest: starting kfake on port %d: %v", b.port, err)
	}
	b.mu.Lock()
	b.c = c
	b.mu.Unlock()
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// Cluster returns the running kfake cluster (for Fault and ControlKey).
func (b *Broker) Cluster() *kfake.Cluster {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.c
}

// Stop shuts the broker down; its log is kept for Consume after Restart.
func (b *Broker) Stop() {
	b.tb.Helper()
	c := b.Cluster()
	if c == nil {
		return
	}
	// From here on the broker refuses writes (closing the connection, as a
	// dying broker would), so nothing is acknowledged after the log is read.
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, errors.New("kafkatest: broker stopping"), true
	})
	for t := range b.topics {
		b.saved[t] = b.Consume(b.tb, t)
	}
	b.close()
}

func (b *Broker) close() {
	b.mu.Lock()
	c := b.c
	b.c = nil
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Restart starts the broker again on the same port; Consume still returns
// what it held before.
func (b *Broker) Restart() {
	b.tb.Helper()
	b.Stop()
	b.start()
}

// Message is one stored Kafka message.
type Message struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   map[string]string
}

// Consume reads every message in topic: what the broker held before its
// restarts, then each partition of the running broker from its start to its
// current high watermark, in offset order per partition.
func (b *Broker) Consume(tb testing.TB, topic string) []Message {
	tb.Helper()
	c := b.Cluster()
	if c == nil {
		tb.Fatal("kafkatest: Consume on a stopped broker")
	}
	saved := append([]Message(nil), b.saved[topic]...)
	return append(saved, b.consumeLive(tb, c, topic)...)
}

func (b *Broker) consumeLive(tb testing.TB, c *kfake.Cluster, topic string) []Message {
	tb.Helper()
	want := map[int32]int64{}
	total := int64(0)
	for _, p := range c.PartitionInfos(topic) {
		if p.HighWatermark > p.LogStartOffset {
			want[p.Partition] = p.HighWatermark
			total += p.HighWatermark - p.LogStartOffset
		}
	}
	if total == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		tb.Fatalf("kafkatest: consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []Message
	done := map[int32]bool{}
	for len(done) < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("kafkatest: consumed %d of %d messages before timing out", len(out), total)
		}
		fs.EachError(func(t string, p int32, err error) {
			tb.Logf("kafkatest: fetch %s/%d: %v", t, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			hw, ok := want[r.Partition]
			if !ok || r.Offset >= hw {
				return
			}
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			out = append(out, Message{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Headers: h})
			if r.Offset == hw-1 {
				done[r.Partition] = true
			}
		})
	}
	return out
}

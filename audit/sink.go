package audit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// Sink receives batches of records from the shipper, in spool order. Write
// returns nil only when every record in the batch is durably accepted; the
// shipper retries the whole batch on error, so a sink sees duplicates after
// a failure and must tolerate them.
type Sink interface {
	// Write delivers records. Each element is one record's JSON encoding.
	Write(ctx context.Context, batch []Message) error
	// Close releases the sink's resources.
	Close() error
}

// Message is one record as a sink receives it.
type Message struct {
	ChainID string
	ID      string
	Kind    Kind
	// JSON is the record's encoding; sinks must not modify or keep it.
	JSON []byte
}

// CloudEvents attributes written as Kafka headers (binary content mode).
const (
	// EventTypePrefix is followed by the record kind in the ce_type header,
	// e.g. "io.guardedsql.audit.v1.statement".
	EventTypePrefix = "io.guardedsql.audit.v1."
)

// KafkaConfig configures the Kafka sink.
type KafkaConfig struct {
	// Brokers are host:port bootstrap addresses.
	Brokers []string
	// Topic receives every record, keyed by chain id so one process's
	// records stay in one partition, in order.
	Topic string
	// TLS, when set, encrypts connections to the brokers.
	TLS *tls.Config
	// SASL, when set, authenticates (kafka-go sasl/plain or sasl/scram).
	SASL sasl.Mechanism
	// Source is the CloudEvents source attribute (default "urn:guard:HOSTNAME").
	Source string
	// WriteTimeout bounds one produce request (default 10s).
	WriteTimeout time.Duration
	// AllowAutoTopicCreation lets the first write create the topic.
	AllowAutoTopicCreation bool
}

// kafkaSink writes with a kafka-go Writer in synchronous mode: the
// shipper is its only caller, so WriteMessages returning nil means the
// brokers acknowledged every message with acks=all.
type kafkaSink struct {
	w      *kafka.Writer
	source []byte
	msgs   []kafka.Message
	// per-batch scratch, reused: the shipper is the only caller
	hdrs  []kafka.Header
	key   []byte
	keyOf string
	types map[Kind][]byte
}

// maxBatchBytes keeps a shipper batch inside one kafka-go produce batch per
// partition (its BatchBytes default is 1 MiB). If kafka-go split a batch,
// a failed first half and a stored second half would reach the topic out of
// order on retry.
const maxBatchBytes = 900 << 10

// maxBatchCount is the most records in one shipper batch.
const maxBatchCount = 2000

// NewKafkaSink returns a Sink that produces to Kafka with acks=all.
func NewKafkaSink(cfg KafkaConfig) (Sink, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("audit: kafka sink needs at least one broker")
	}
	if cfg.Topic == "" {
		return nil, errors.New("audit: kafka sink needs a topic")
	}
	src := cfg.Source
	if src == "" {
		h, _ := os.Hostname()
		src = "urn:guard:" + h
	}
	wt := cfg.WriteTimeout
	if wt <= 0 {
		wt = 10 * time.Second
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.Topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		Async:        false,
		// kafka-go waits BatchTimeout for a partial batch; the shipper
		// already batches, so a short timeout only adds latency.
		BatchTimeout:    time.Millisecond,
		BatchSize:       maxBatchCount,
		BatchBytes:      1 << 20,
		MaxAttempts:     2,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 200 * time.Millisecond,
		WriteTimeout:    wt,
		ReadTimeout:     wt,
		Transport: &kafka.Transport{
			TLS:         cfg.TLS,
			SASL:        cfg.SASL,
			DialTimeout: 5 * time.Second,
			MetadataTTL: 5 * time.Second,
			ClientID:    "guard-audit",
		},
		AllowAutoTopicCreation: cfg.AllowAutoTopicCreation,
	}
	return &kafkaSink{w: w, source: []byte(src)}, nil
}

func (k *kafkaSink) Write(ctx context.Context, batch []Message) error {
	// Header slices and constant values are shared across messages and
	// batches: WriteMessages is synchronous and keeps none of them.
	if cap(k.hdrs) < len(batch)*kafkaHeaders {
		k.hdrs = make([]kafka.Header, len(batch)*kafkaHeaders)
	}
	k.msgs = k.msgs[:0]
	for i, m := range batch {
		if m.ChainID != k.keyOf {
			k.keyOf, k.key = m.ChainID, []byte(m.ChainID)
		}
		h := k.hdrs[i*kafkaHeaders : (i+1)*kafkaHeaders : (i+1)*kafkaHeaders]
		h[0] = kafka.Header{Key: "ce_specversion", Value: ceSpecVersion}
		h[1] = kafka.Header{Key: "ce_id", Value: []byte(m.ID)}
		h[2] = kafka.Header{Key: "ce_type", Value: k.eventType(m.Kind)}
		h[3] = kafka.Header{Key: "ce_source", Value: k.source}
		h[4] = kafka.Header{Key: "content-type", Value: contentTypeJSON}
		k.msgs = append(k.msgs, kafka.Message{Key: k.key, Value: m.JSON, Headers: h})
	}
	if err := k.w.WriteMessages(ctx, k.msgs...); err != nil {
		return fmt.Errorf("audit: kafka: %w", err)
	}
	return nil
}

const kafkaHeaders = 5

var (
	ceSpecVersion   = []byte("1.0")
	contentTypeJSON = []byte("application/json")
)

func (k *kafkaSink) eventType(kind Kind) []byte {
	t, ok := k.types[kind]
	if !ok {
		if k.types == nil {
			k.types = map[Kind][]byte{}
		}
		t = []byte(EventTypePrefix + string(kind))
		if len(k.types) < 64 {
			k.types[kind] = t
		}
	}
	return t
}

func (k *kafkaSink) Close() error { return k.w.Close() }

// writerSink writes JSON lines to an io.Writer.
type writerSink struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	sync  func() error
	close func() error
}

// NewWriterSink returns a Sink that writes one JSON record per line to w.
// Close does not close w.
func NewWriterSink(w io.Writer) Sink { return &writerSink{w: w} }

// NewFileSink returns a Sink that appends JSON lines to the file at path,
// creating it if needed, and fsyncs after every batch.
func NewFileSink(path string) (Sink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: file sink: %w", err)
	}
	return &writerSink{w: f, sync: f.Sync, close: f.Close}, nil
}

func (s *writerSink) Write(_ context.Context, batch []Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	for _, m := range batch {
		s.buf = append(s.buf, m.JSON...)
		s.buf = append(s.buf, '\n')
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("audit: writer sink: %w", err)
	}
	if s.sync != nil {
		if err := s.sync(); err != nil {
			return fmt.Errorf("audit: file sink: %w", err)
		}
	}
	return nil
}

func (s *writerSink) Close() error {
	if s.close != nil {
		return s.close()
	}
	return nil
}

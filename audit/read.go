package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

// KafkaRecords iterates over the records in cfg.Topic, partition by
// partition from the oldest offset, in offset order within a partition
// (one chain lives in one partition, so chains keep their order). Without
// follow it stops at each partition's end as of the start; with follow it
// reads all partitions concurrently and keeps waiting for new records
// until ctx is done. A message that is not a record yields an error Verify
// reports as unreadable.
func KafkaRecords(ctx context.Context, cfg KafkaConfig, follow bool) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		if len(cfg.Brokers) == 0 || cfg.Topic == "" {
			yield(nil, errors.New("audit: reading Kafka needs brokers and a topic"))
			return
		}
		dialer := &kafka.Dialer{Timeout: 10 * time.Second, TLS: cfg.TLS, SASLMechanism: cfg.SASL, ClientID: "guardctl"}
		conn, err := dialer.DialContext(ctx, "tcp", cfg.Brokers[0])
		if err != nil {
			yield(nil, fmt.Errorf("audit: kafka: %w", err))
			return
		}
		conn.SetDeadline(time.Now().Add(stallTimeout))
		parts, err := conn.ReadPartitions(cfg.Topic)
		conn.Close()
		if err != nil {
			yield(nil, fmt.Errorf("audit: kafka: reading partitions of %s: %w", cfg.Topic, err))
			return
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i].ID < parts[j].ID })
		reader := func(p int) *kafka.Reader {
			return kafka.NewReader(kafka.ReaderConfig{
				Brokers: cfg.Brokers, Topic: cfg.Topic, Partition: p, Dialer: dialer,
				MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond,
			})
		}
		n := 0
		decode := func(m kafka.Message) (*Record, error) {
			n++
			rec, err := DecodeRecord(m.Value)
			if err != nil {
				return nil, &UnreadableError{Line: n, Err: fmt.Errorf("partition %d offset %d: %w", m.Partition, m.Offset, err)}
			}
			return rec, nil
		}
		if !follow {
			for _, p := range parts {
				dctx, cancel := context.WithTimeout(ctx, stallTimeout)
				lc, err := dialer.DialLeader(dctx, "tcp", cfg.Brokers[0], cfg.Topic, p.ID)
				cancel()
				if err != nil {
					yield(nil, fmt.Errorf("audit: kafka: partition %d: %w", p.ID, err))
					return
				}
				lc.SetDeadline(time.Now().Add(stallTimeout))
				first, last, err := lc.ReadOffsets()
				lc.Close()
				if err != nil {
					yield(nil, fmt.Errorf("audit: kafka: partition %d offsets: %w", p.ID, err))
					return
				}
				if last <= first {
					continue
				}
				r := reader(p.ID)
				if err := r.SetOffset(first); err != nil {
					r.Close()
					yield(nil, err)
					return
				}
				for off := first; off < last; {
					// Without follow, a broker that stops answering is an
					// error, not a wait forever.
					rctx, cancel := context.WithTimeout(ctx, stallTimeout)
					m, err := r.ReadMessage(rctx)
					cancel()
					if err != nil {
						r.Close()
						yield(nil, fmt.Errorf("audit: kafka: partition %d: %w", p.ID, err))
						return
					}
					off = m.Offset + 1
					if !yield(decode(m)) {
						r.Close()
						return
					}
				}
				r.Close()
			}
			return
		}
		type item struct {
			m   kafka.Message
			err error
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := make(chan item)
		for _, p := range parts {
			go func() {
				r := reader(p.ID)
				defer r.Close()
				r.SetOffset(kafka.FirstOffset)
				for {
					m, err := r.ReadMessage(ctx)
					select {
					case ch <- item{m, err}:
					case <-ctx.Done():
						return
					}
					if err != nil {
						return
					}
				}
			}()
		}
		for {
			select {
			case <-ctx.Done():
				return
			case it := <-ch:
				if it.err != nil {
					if ctx.Err() == nil {
						yield(nil, fmt.Errorf("audit: kafka: %w", it.err))
					}
					return
				}
				if !yield(decode(it.m)) {
					return
				}
			}
		}
	}
}

// stallTimeout bounds each step of a non-follow read of Kafka.
const stallTimeout = 30 * time.Second

// Filter selects records for guardctl audit tail. Empty fields match
// everything.
type Filter struct {
	// Identity matches the acting subject or any subject it acts for.
	Identity string
	// Effect matches the decision effect (allow, deny, require_approval)
	// or the statement effect (read, write, ddl, ...), case-insensitively.
	Effect string
	// Table matches an object, schema-qualified or by its last name part.
	Table string
}

// Match reports whether rec passes the filter.
func (f Filter) Match(rec *Record) bool {
	if f.Identity != "" {
		ok := rec.Identity != nil && rec.Identity.Subject == f.Identity
		for _, p := range rec.OnBehalfOf {
			ok = ok || p.Subject == f.Identity
		}
		if !ok {
			return false
		}
	}
	if f.Effect != "" {
		ok := strings.EqualFold(rec.Effect, f.Effect)
		if rec.Decision != nil {
			ok = ok || strings.EqualFold(rec.Decision.Effect, f.Effect)
		}
		if !ok {
			return false
		}
	}
	if f.Table != "" {
		ok := false
		for _, o := range rec.Objects {
			short := o[strings.LastIndexByte(o, '.')+1:]
			ok = ok || strings.EqualFold(o, f.Table) || strings.EqualFold(short, f.Table)
		}
		if !ok {
			return false
		}
	}
	return true
}

// FormatLine renders rec as one readable line: time, kind, who (and for
// whom), decision, command and objects, outcome, masking, the statement,
// and the chain position.
func FormatLine(rec *Record) string {
	var b strings.Builder
	b.WriteString(rec.Time.UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteByte(' ')
	if rec.Kind != KindStatement {
		b.WriteString(string(rec.Kind))
		if rec.Detail != "" {
			b.WriteString(" ")
			b.WriteString(oneLineText(rec.Detail, 200))
		}
		if rec.Checkpoint != nil {
			fmt.Fprintf(&b, " covers #%d key %s", rec.Checkpoint.Seq, rec.Checkpoint.KeyID)
		}
	} else {
		who := "anonymous"
		if rec.Identity != nil && rec.Identity.Subject != "" {
			who = rec.Identity.Subject
		}
		for _, p := range rec.OnBehalfOf {
			who += " for " + p.Subject
		}
		b.WriteString(who)
		if rec.Decision != nil {
			b.WriteString(" " + rec.Decision.Effect)
			if rec.Decision.Rule != "" {
				b.WriteString("(" + rec.Decision.Rule + ")")
			}
		}
		if rec.Command != "" {
			b.WriteString(" " + rec.Command)
		}
		if len(rec.Objects) > 0 {
			b.WriteString(" " + strings.Join(rec.Objects, ","))
		}
		if o := rec.Outcome; o != nil {
			b.WriteString(" " + o.Status)
			switch {
			case o.RowsReturned > 0:
				fmt.Fprintf(&b, " rows=%d", o.RowsReturned)
			case o.RowsAffected > 0:
				fmt.Fprintf(&b, " affected=%d", o.RowsAffected)
			}
			if o.SQLState != "" {
				b.WriteString(" sqlstate=" + o.SQLState)
			}
		}
		if rec.Duration > 0 {
			b.WriteString(" " + rec.Duration.Round(time.Microsecond).String())
		}
		if len(rec.Masked) > 0 {
			parts := make([]string, 0, len(rec.Masked))
			for _, m := range rec.Masked {
				parts = append(parts, fmt.Sprintf("%s:%d", m.Column, m.Cells))
			}
			b.WriteString(" masked=" + strings.Join(parts, ","))
		}
		if rec.Statement != "" {
			fmt.Fprintf(&b, " %q", oneLineText(rec.Statement, 160))
		}
	}
	id := rec.Chain.ID
	if len(id) > 8 {
		id = id[len(id)-8:]
	}
	fmt.Fprintf(&b, " [%s#%d]", id, rec.Chain.Sequence)
	return b.String()
}

func oneLineText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ErrUnavailable means the audit trail cannot take another record: the
// spool is full in fail-closed mode, or it cannot be written. The guard
// refuses the statement rather than run it unrecorded.
var ErrUnavailable = errors.New("audit: audit trail unavailable")

// FailMode says what happens when the spool is full.
type FailMode string

const (
	// FailBlock makes Emit wait for the shipper to free space (default).
	FailBlock FailMode = "block"
	// FailClosed makes Admit refuse statements with ErrUnavailable while
	// the spool is full.
	FailClosed FailMode = "closed"
)

// Config configures a Logger.
type Config struct {
	// SpoolDir holds the durable spool. Required.
	SpoolDir string
	// SpoolMaxBytes bounds undelivered bytes in the spool (default 256 MiB).
	SpoolMaxBytes int64
	// SegmentBytes is the size at which a spool segment is closed and a
	// new one started (default min(SpoolMaxBytes/4, 16 MiB)).
	SegmentBytes int64
	// SyncInterval is how often appended records are fsynced as a group
	// (default 20ms). A killed process loses nothing (the bytes are in the
	// kernel before Emit returns); a power loss may lose this window.
	SyncInterval time.Duration
	// FailMode is FailBlock (default) or FailClosed.
	FailMode FailMode

	// Kafka, when Brokers is set, adds a Kafka sink.
	Kafka KafkaConfig
	// File, when set, adds a JSON-lines file sink.
	File string
	// Sinks are further sinks (NewWriterSink for any io.Writer).
	Sinks []Sink

	// SigningKey, when set, makes the logger write signed checkpoints.
	SigningKey ed25519.PrivateKey
	// CheckpointEvery is the number of records between checkpoints
	// (default 1000).
	CheckpointEvery int
	// CheckpointInterval is the longest time between checkpoints while
	// records arrive (default 10s).
	CheckpointInterval time.Duration

	// MaxStatementBytes cuts longer statement texts (at a UTF-8 boundary)
	// and records the full length in StatementLen, so one record always
	// fits a Kafka message (default 64 KiB).
	MaxStatementBytes int

	// RetryMin and RetryMax bound the shipper's backoff after a failed
	// delivery (defaults 50ms and 1s).
	RetryMin, RetryMax time.Duration
	// OnError, when set, is told about delivery failures (for logging);
	// it runs on the shipper goroutine and must not block.
	OnError func(error)
}

// Logger is the durable audit Emitter: Emit appends to a local spool and
// one shipper goroutine delivers the spool to the sinks.
type Logger struct {
	cfg   Config
	sp    *spool
	sinks []Sink

	chainID string

	mu          sync.Mutex // orders the chain and spool appends
	seq         uint64
	prev        string
	sinceCP     int
	lastCP      time.Time
	fullNoticed bool
	noticeEnd   int64
	closed      bool
	frame       []byte

	keyID string

	shipCtx    context.Context
	shipCancel context.CancelFunc
	draining   chan struct{}
	shipDone   chan struct{}
	bgDone     chan struct{}
	stopBg     chan struct{}
	closeOnce  sync.Once
}

// New opens (or recovers) the spool in cfg.SpoolDir, starts the shipper and
// writes a KindStart record.
func New(cfg Config) (*Logger, error) {
	if cfg.SpoolDir == "" {
		return nil, errors.New("audit: Config.SpoolDir is required")
	}
	if cfg.SpoolMaxBytes <= 0 {
		cfg.SpoolMaxBytes = 256 << 20
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = min(cfg.SpoolMaxBytes/4, 16<<20)
	}
	cfg.SegmentBytes = max(cfg.SegmentBytes, 4096)
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = 20 * time.Millisecond
	}
	switch cfg.FailMode {
	case "":
		cfg.FailMode = FailBlock
	case FailBlock, FailClosed:
	default:
		return nil, fmt.Errorf("audit: unknown fail mode %q (want block or closed)", cfg.FailMode)
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 1000
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = 10 * time.Second
	}
	if cfg.MaxStatementBytes <= 0 {
		cfg.MaxStatementBytes = 64 << 10
	}
	cfg.MaxStatementBytes = min(cfg.MaxStatementBytes, 512<<10)
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 50 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(time.Second, cfg.RetryMin)
	}
	if cfg.SigningKey != nil && len(cfg.SigningKey) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: signing key is not an Ed25519 private key")
	}

	var sinks []Sink
	if len(cfg.Kafka.Brokers) > 0 {
		k, err := NewKafkaSink(cfg.Kafka)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, k)
	}
	if cfg.File != "" {
		f, err := NewFileSink(cfg.File)
		if err != nil {
			closeSinks(sinks)
			return nil, err
		}
		sinks = append(sinks, f)
	}
	sinks = append(sinks, cfg.Sinks...)
	if len(sinks) == 0 {
		return nil, errors.New("audit: no sink configured (Kafka, File or Sinks)")
	}

	sp, rec, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.SegmentBytes)
	if err != nil {
		closeSinks(sinks)
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		sp.close()
		closeSinks(sinks)
		return nil, err
	}
	l := &Logger{
		cfg: cfg, sp: sp, sinks: sinks, chainID: id.String(),
		lastCP:   time.Now(),
		draining: make(chan struct{}), shipDone: make(chan struct{}),
		bgDone: make(chan struct{}), stopBg: make(chan struct{}),
	}
	if cfg.SigningKey != nil {
		l.keyID = KeyID(cfg.SigningKey.Public().(ed25519.PublicKey))
	}
	l.shipCtx, l.shipCancel = context.WithCancel(context.Background())

	detail := "audit chain started"
	if rec.records > 0 {
		detail += fmt.Sprintf("; spool replays %d undelivered records (%d bytes)", rec.records, rec.pending)
	}
	if rec.torn > 0 {
		detail += fmt.Sprintf("; torn spool tail of %d bytes truncated", rec.torn)
	}
	if err := l.emitInternal(&Record{Kind: KindStart, Detail: detail}); err != nil {
		sp.close()
		closeSinks(sinks)
		return nil, err
	}
	for _, c := range rec.corrupt {
		l.emitInternal(&Record{Kind: KindSpoolCorrupt, Detail: c})
	}
	go l.ship()
	go l.background()
	return l, nil
}

func closeSinks(s []Sink) {
	for _, k := range s {
		k.Close()
	}
}

// ChainID returns this process's chain id.
func (l *Logger) ChainID() string { return l.chainID }

// Pending returns the bytes in the spool not yet acknowledged by every sink.
func (l *Logger) Pending() int64 { return l.sp.pending() }

// Admit reports whether a statement may run. In fail-closed mode it returns
// an error wrapping ErrUnavailable while the spool is full or unwritable;
// in block mode it returns nil unless the spool is unwritable.
func (l *Logger) Admit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.sp.mu.Lock()
	defer l.sp.mu.Unlock()
	if l.sp.broken != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, l.sp.broken)
	}
	if l.cfg.FailMode == FailClosed && l.sp.used >= l.cfg.SpoolMaxBytes {
		return fmt.Errorf("%w: spool full (%d of %d bytes undelivered)", ErrUnavailable, l.sp.used, l.cfg.SpoolMaxBytes)
	}
	return nil
}

// Emit appends rec to the spool. It fills rec.Version, rec.ID (a UUIDv7
// when empty), rec.Time (now, when zero; always converted to UTC) and
// rec.Chain. It keeps nothing of rec. When the spool is full Emit waits for
// space until ctx is done; in fail-closed mode it never waits: Admit has
// already refused new statements, and the record of one that was admitted
// (or denied) goes past the bound so its caller gets an answer.
func (l *Logger) Emit(ctx context.Context, rec *Record) error {
	if rec == nil {
		return errors.New("audit: nil record")
	}
	rec.Version = SchemaVersion
	if rec.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		rec.ID = id.String()
	}
	if rec.Time.IsZero() || rec.Time.Year() < 1 || rec.Time.Year() > 9999 {
		rec.Time = time.Now()
	}
	rec.Time = rec.Time.UTC()
	if rec.Kind == "" {
		rec.Kind = KindStatement
	}
	if n := l.cfg.MaxStatementBytes; len(rec.Statement) > n {
		for n > 0 && !utf8.RuneStart(rec.Statement[n]) {
			n--
		}
		rec.StatementLen = len(rec.Statement)
		rec.Statement = rec.Statement[:n]
	}
	if len(rec.Detail) > l.cfg.MaxStatementBytes {
		rec.Detail = oneLineText(rec.Detail, l.cfg.MaxStatementBytes)
	}
	bp := bodyPool.Get().(*[]byte)
	defer putBody(bp)
	body, err := appendMarshalBody((*bp)[:0], rec)
	if err == nil && len(body) > maxRecordBytes {
		shrink(rec)
		body, err = appendMarshalBody(body[:0], rec)
	}
	*bp = body
	if err != nil {
		return fmt.Errorf("audit: encoding record: %w", err)
	}
	limit := l.cfg.SpoolMaxBytes
	// In fail-closed mode Admit is the gate: a record reaching Emit belongs
	// to a statement that was admitted (and may have run) or refused, and
	// its caller must get an answer. It goes past the bound rather than
	// wait for room that a broker outage may never give; the overshoot is
	// bounded by the statements in flight when the spool filled.
	closedMode := l.cfg.FailMode == FailClosed
	need := int64(len(body) + 300)
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return fmt.Errorf("%w: logger closed", ErrUnavailable)
		}
		l.sp.mu.Lock()
		if l.sp.fits(need, limit) || l.sp.broken != nil {
			break
		}
		if !l.fullNoticed {
			l.fullNoticed = true
			// The notice itself goes past the bound: it is what tells the
			// auditor why statements stalled or were refused.
			l.noticeEnd, _ = l.appendLocked(&Record{Kind: KindSpoolFull, Detail: fmt.Sprintf(
				"spool full: %d of %d bytes undelivered; mode %s", l.sp.used, l.cfg.SpoolMaxBytes, l.cfg.FailMode)})
		}
		if closedMode {
			break
		}
		wait := l.sp.spaceChan()
		noticeEnd := l.noticeEnd
		l.sp.mu.Unlock()
		l.mu.Unlock()
		l.sp.flush(noticeEnd)
		select {
		case <-wait:
		case <-l.draining: // Close: the loop sees l.closed
		case <-ctx.Done():
			return fmt.Errorf("%w: spool full: %w", ErrUnavailable, ctx.Err())
		}
	}
	end, err := l.appendBodyLocked(rec, body)
	l.sp.mu.Unlock()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.flush(end)
}

// bodyPool holds encoding buffers for Emit, which runs on every statement.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func putBody(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		bodyPool.Put(bp)
	}
}

func (l *Logger) flush(end int64) error {
	if err := l.sp.flush(end); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// maxRecordBytes keeps every record inside one Kafka message (the broker
// default message.max.bytes is 1 MiB) with room for headers and the chain.
const maxRecordBytes = 800 << 10

// shrink cuts the lists of a record too large for one Kafka message, and
// says so in Detail. Statement and Detail are already bounded.
func shrink(rec *Record) {
	const keep = 64
	cut := false
	if len(rec.Objects) > keep {
		rec.Objects, cut = rec.Objects[:keep], true
	}
	if len(rec.Dangers) > keep {
		rec.Dangers, cut = rec.Dangers[:keep], true
	}
	if len(rec.Masked) > keep {
		rec.Masked, cut = rec.Masked[:keep], true
	}
	if rec.Outcome != nil && len(rec.Outcome.Error) > 4096 {
		o := *rec.Outcome
		o.Error, cut = oneLineText(o.Error, 4096), true
		rec.Outcome = &o
	}
	if rec.Identity != nil && len(rec.Identity.Attributes) > keep {
		p := *rec.Identity
		p.Attributes, cut = nil, true
		rec.Identity = &p
	}
	if cut {
		rec.Detail = oneLineText("record shortened to fit one message: lists cut to 64 entries; "+rec.Detail, 4096)
	}
	if len(rec.Statement) > 64<<10 {
		n := 64 << 10
		for n > 0 && !utf8.RuneStart(rec.Statement[n]) {
			n--
		}
		if rec.StatementLen == 0 {
			rec.StatementLen = len(rec.Statement)
		}
		rec.Statement = rec.Statement[:n]
	}
}

// emitInternal appends a lifecycle record regardless of the bound.
func (l *Logger) emitInternal(rec *Record) error {
	l.mu.Lock()
	l.sp.mu.Lock()
	end, err := l.appendLocked(rec)
	if err == nil && l.closed {
		// After the stop record, keep the chain's end signed.
		end, err = l.checkpointLocked()
	}
	l.sp.mu.Unlock()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.flush(end)
}

// appendLocked fills and appends a record the logger makes itself. Called
// with l.mu and l.sp.mu held.
func (l *Logger) appendLocked(rec *Record) (int64, error) {
	rec.Version = SchemaVersion
	if rec.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return 0, err
		}
		rec.ID = id.String()
	}
	rec.Time = time.Now().UTC()
	body, err := marshalBody(rec)
	if err != nil {
		return 0, err
	}
	return l.appendBodyLocked(rec, body)
}

// appendBodyLocked seals body into the chain and queues it in the spool;
// it returns the spool position to flush to. Called with l.mu and l.sp.mu
// held.
func (l *Logger) appendBodyLocked(rec *Record, body []byte) (int64, error) {
	if l.sp.broken != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, l.sp.broken)
	}
	seq := l.seq + 1
	var hash string
	l.frame, hash = appendSealedFrame(l.frame[:0], l.chainID, rec.ID, string(rec.Kind), body, seq, l.prev)
	end, err := l.sp.appendLocked(l.frame)
	if cap(l.frame) > 1<<20 {
		l.frame = nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	rec.Chain = Chain{ID: l.chainID, Sequence: seq, PrevHash: l.prev, Hash: hash}
	l.seq, l.prev = seq, hash
	if l.fullNoticed && rec.Kind != KindSpoolFull && l.sp.used < l.cfg.SpoolMaxBytes/2 {
		l.fullNoticed = false
	}
	if rec.Kind == KindCheckpoint {
		l.sinceCP = 0
		l.lastCP = time.Now()
		return end, nil
	}
	l.sinceCP++
	if l.cfg.SigningKey != nil && l.sinceCP >= l.cfg.CheckpointEvery {
		return l.checkpointLocked()
	}
	return end, nil
}

// checkpointLocked appends a signed checkpoint covering the last record.
func (l *Logger) checkpointLocked() (int64, error) {
	if l.cfg.SigningKey == nil || l.seq == 0 {
		return l.sp.appended, nil
	}
	sig := ed25519.Sign(l.cfg.SigningKey, CheckpointMessage(l.chainID, l.seq, l.prev))
	return l.appendLocked(&Record{Kind: KindCheckpoint, Checkpoint: &Checkpoint{
		Seq: l.seq, Hash: l.prev, KeyID: l.keyID, Signature: base64.StdEncoding.EncodeToString(sig),
	}})
}

// background runs grouped fsync and time-based checkpoints.
func (l *Logger) background() {
	defer close(l.bgDone)
	t := time.NewTicker(l.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stopBg:
			return
		case <-t.C:
		}
		if err := l.sp.sync(); err != nil && l.cfg.OnError != nil {
			l.cfg.OnError(fmt.Errorf("audit: spool fsync: %w", err))
		}
		if l.cfg.SigningKey != nil {
			l.mu.Lock()
			var end int64
			if !l.closed && l.sinceCP > 0 && time.Since(l.lastCP) >= l.cfg.CheckpointInterval {
				l.sp.mu.Lock()
				end, _ = l.checkpointLocked()
				l.sp.mu.Unlock()
			}
			l.mu.Unlock()
			if end > 0 {
				l.sp.flush(end)
			}
		}
	}
}

// ship is the one goroutine that delivers the spool, in order.
func (l *Logger) ship() {
	defer close(l.shipDone)
	ctx := l.shipCtx
	backoff := l.cfg.RetryMin
	var failures int
	var outageStart time.Time
	var lastErr error
	msgs := make([]Message, 0, maxBatchCount)
	for {
		batch, next, err := l.sp.read(maxBatchCount, maxBatchBytes)
		if err != nil {
			l.report(err)
			if !l.sleep(ctx, backoff) {
				return
			}
			continue
		}
		if len(batch) == 0 {
			if next != l.sp.cur {
				l.sp.ack(next)
				continue
			}
			select {
			case <-l.sp.notify:
				// Let a few more records arrive so one write carries
				// them: waking per record costs more than the records.
				if !l.sleep(ctx, shipLinger) {
					return
				}
				continue
			case <-l.draining:
				// Close wrote its last records before closing draining;
				// anything still unread is a notify we already consumed.
				if l.sp.pending() == 0 {
					return
				}
				select {
				case <-l.sp.notify:
				case <-ctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
				continue
			case <-ctx.Done():
				return
			}
		}
		msgs = msgs[:0]
		for _, e := range batch {
			msgs = append(msgs, Message{ChainID: e.ChainID, ID: e.ID, Kind: Kind(e.Kind), JSON: e.JSON})
		}
		done := make([]bool, len(l.sinks))
		for {
			ok := true
			for i, s := range l.sinks {
				if done[i] {
					continue
				}
				if err := s.Write(ctx, msgs); err != nil {
					ok, lastErr = false, err
					continue
				}
				done[i] = true
			}
			if ok {
				break
			}
			if failures == 0 {
				outageStart = time.Now()
			}
			failures++
			l.report(lastErr)
			if !l.sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, l.cfg.RetryMax)
		}
		if err := l.sp.ack(next); err != nil {
			l.report(fmt.Errorf("audit: writing spool cursor: %w", err))
		}
		if failures > 0 {
			l.emitInternal(&Record{Kind: KindDelivery, Detail: fmt.Sprintf(
				"delivery resumed after %d failed attempts over %s; last error: %s",
				failures, time.Since(outageStart).Round(time.Millisecond), oneLine(lastErr))})
			failures, backoff = 0, l.cfg.RetryMin
		}
	}
}

// shipLinger is how long the shipper waits after an idle spool gets a
// record, to send a batch rather than a single record.
const shipLinger = 2 * time.Millisecond

func oneLine(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return strings.ReplaceAll(s, "\n", " ")
}

func (l *Logger) report(err error) {
	if l.cfg.OnError != nil && err != nil {
		l.cfg.OnError(err)
	}
}

func (l *Logger) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close writes a KindStop record (and a final checkpoint when signing),
// then waits until the spool is delivered or ctx is done, whichever comes
// first. Undelivered records stay in the spool for the next New on the
// same directory. It returns an error wrapping ctx.Err() if records remain.
func (l *Logger) Close(ctx context.Context) error {
	var err error
	l.closeOnce.Do(func() { err = l.close(ctx) })
	return err
}

func (l *Logger) close(ctx context.Context) error {
	l.mu.Lock()
	l.sp.mu.Lock()
	end, stopErr := l.appendLocked(&Record{Kind: KindStop, Detail: "audit chain stopped"})
	if l.cfg.SigningKey != nil && stopErr == nil {
		end, stopErr = l.checkpointLocked()
	}
	l.closed = true
	l.sp.mu.Unlock()
	l.mu.Unlock()
	if stopErr == nil {
		stopErr = l.flush(end)
	}
	close(l.draining)

	var waitErr error
	select {
	case <-l.shipDone:
	case <-ctx.Done():
		l.shipCancel()
		<-l.shipDone
	}
	l.shipCancel()
	if left := l.sp.pending(); left > 0 {
		waitErr = fmt.Errorf("audit: %d bytes left in the spool for the next start: %w", left, context.Cause(ctx))
		if ctx.Err() == nil {
			waitErr = fmt.Errorf("audit: %d bytes left in the spool for the next start", left)
		}
	}
	close(l.stopBg)
	<-l.bgDone
	var cerr error
	for _, s := range l.sinks {
		cerr = errors.Join(cerr, s.Close())
	}
	return errors.Join(stopErr, waitErr, l.sp.close(), cerr)
}

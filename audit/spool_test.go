package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func closeWithin(t testing.TB, l *Logger, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return l.Close(ctx)
}

// TestTornTailRecovers cuts the spool in the middle of its last record, as
// a crash during write() would, and checks that the next start delivers
// every whole record before the cut and reports the truncation.
func TestTornTailRecovers(t *testing.T) {
	dir := t.TempDir()
	sink := &collectSink{blocked: true}
	l, err := New(Config{SpoolDir: dir, Sinks: []Sink{sink}, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for i := range 50 {
		rec := statement(i)
		if err := l.Emit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	if err := closeWithin(t, l, 50*time.Millisecond); err == nil {
		t.Fatal("Close reported a drained spool while the sink refused every write")
	}

	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("want one spool segment, found %v", segs)
	}
	fi, err := os.Stat(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	// The last frame is the stop record; the one before it the last
	// statement. Cut into the stop record.
	if err := os.Truncate(segs[0], fi.Size()-20); err != nil {
		t.Fatal(err)
	}

	sink2 := &collectSink{}
	l2, err := New(Config{SpoolDir: dir, Sinks: []Sink{sink2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := closeWithin(t, l2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got := sink2.records(t)
	byID := map[string]bool{}
	var start2 *Record
	for i, r := range got {
		byID[r.ID] = true
		if r.Kind == KindStart && r.Chain.ID == l2.ChainID() {
			start2 = &got[i]
		}
		if r.Kind == KindStop && r.Chain.ID == l.ChainID() {
			t.Fatal("the torn stop record was delivered")
		}
	}
	for _, id := range ids {
		if !byID[id] {
			t.Fatalf("record %s before the torn tail was lost", id)
		}
	}
	if start2 == nil || !strings.Contains(start2.Detail, "torn spool tail") {
		t.Fatalf("the new chain's start record does not report the torn tail: %+v", start2)
	}
	requireVerified(t, got, nil)
}

// TestFullSpoolBlocks: in block mode a full spool makes Emit wait until the
// shipper frees space; with a deadline the caller gets ErrUnavailable.
func TestFullSpoolBlocks(t *testing.T) {
	sink := &collectSink{blocked: true}
	l, err := New(Config{SpoolDir: t.TempDir(), SpoolMaxBytes: 32 << 10, Sinks: []Sink{sink},
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	emitted := map[string]string{}
	for i := 0; ; i++ {
		if err := l.Admit(ctx); err != nil {
			t.Fatalf("block mode Admit: %v", err)
		}
		rec := statement(i)
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err := l.Emit(short, rec)
		cancel()
		if err != nil {
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("full spool: got %v, want ErrUnavailable and the deadline", err)
			}
			break
		}
		emitted[rec.ID] = rec.Chain.Hash
		if i > 1000 {
			t.Fatal("a 32 KiB spool took 1000 records without filling")
		}
	}
	// A waiting Emit completes once the sink accepts again.
	done := make(chan error, 1)
	rec := statement(-1)
	go func() { done <- l.Emit(ctx, rec) }()
	sink.setBlocked(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	emitted[rec.ID] = rec.Chain.Hash
	if err := closeWithin(t, l, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got := sink.records(t)
	requireAll(t, emitted, got)
	requireVerified(t, got, nil)
	if !hasKind(got, KindSpoolFull) {
		t.Fatal("no spool.full record")
	}
}

// TestFailClosedRefuses: in fail-closed mode Admit refuses statements with
// ErrUnavailable while the spool is full, and admits them again after.
func TestFailClosedRefuses(t *testing.T) {
	sink := &collectSink{blocked: true}
	l, err := New(Config{SpoolDir: t.TempDir(), SpoolMaxBytes: 32 << 10, FailMode: FailClosed, Sinks: []Sink{sink},
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	emitted := map[string]string{}
	var refused error
	for i := 0; i < 1000; i++ {
		if refused = l.Admit(ctx); refused != nil {
			break
		}
		rec := statement(i)
		if err := l.Emit(ctx, rec); err != nil {
			t.Fatalf("Emit after Admit allowed it: %v", err)
		}
		emitted[rec.ID] = rec.Chain.Hash
	}
	if !errors.Is(refused, ErrUnavailable) {
		t.Fatalf("Admit on a full spool: %v, want ErrUnavailable", refused)
	}
	if !strings.Contains(refused.Error(), "spool full") {
		t.Fatalf("refusal does not say why: %v", refused)
	}
	sink.setBlocked(false)
	for l.Pending() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Admit(ctx); err != nil {
		t.Fatalf("Admit after the spool drained: %v", err)
	}
	if err := closeWithin(t, l, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got := sink.records(t)
	requireAll(t, emitted, got)
	requireVerified(t, got, nil)
}

func hasKind(recs []Record, k Kind) bool {
	for _, r := range recs {
		if r.Kind == k {
			return true
		}
	}
	return false
}

// TestSegmentsRotateAndReplay: records span several segments; a restart
// with an undelivered backlog replays it in order after the old chain.
func TestSegmentsRotateAndReplay(t *testing.T) {
	dir := t.TempDir()
	sink := &collectSink{blocked: true}
	l, err := New(Config{SpoolDir: dir, SegmentBytes: 8 << 10, Sinks: []Sink{sink}, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	emitted := map[string]string{}
	for i := range 200 {
		rec := statement(i)
		if err := l.Emit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		emitted[rec.ID] = rec.Chain.Hash
	}
	closeWithin(t, l, 20*time.Millisecond)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) < 5 {
		t.Fatalf("want the backlog over several segments, found %d", len(segs))
	}
	sink2 := &collectSink{}
	l2, err := New(Config{SpoolDir: dir, SegmentBytes: 8 << 10, Sinks: []Sink{sink2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := closeWithin(t, l2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got := sink2.records(t)
	requireAll(t, emitted, got)
	rep := requireVerified(t, got, nil)
	if len(rep.Chains) != 2 {
		t.Fatalf("want the old and the new chain, got %d", len(rep.Chains))
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("delivered segments were not removed: %v", segs)
	}
}

// TestSinksRetryIndependently: when one of two sinks fails, the batch is
// retried only to the failing one, and both end with every record.
func TestSinksRetryIndependently(t *testing.T) {
	good, flaky := &collectSink{}, &collectSink{blocked: true}
	l, err := New(Config{SpoolDir: t.TempDir(), Sinks: []Sink{good, flaky}, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	emitted := map[string]string{}
	for i := range 20 {
		rec := statement(i)
		if err := l.Emit(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		emitted[rec.ID] = rec.Chain.Hash
	}
	for {
		flaky.mu.Lock()
		w := flaky.writes
		flaky.mu.Unlock()
		if w >= 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	flaky.setBlocked(false)
	if err := closeWithin(t, l, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*collectSink{"good": good, "flaky": flaky} {
		got := s.records(t)
		if dups := requireAll(t, emitted, got); dups != 0 {
			t.Fatalf("%s sink got %d duplicates", name, dups)
		}
		requireVerified(t, got, nil)
	}
}

// TestCloseReleasesBlockedEmit: an Emit waiting for space in a full spool
// returns ErrUnavailable when the logger closes instead of hanging.
func TestCloseReleasesBlockedEmit(t *testing.T) {
	sink := &collectSink{blocked: true}
	l, err := New(Config{SpoolDir: t.TempDir(), SpoolMaxBytes: 16 << 10, Sinks: []Sink{sink}, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if err := l.Emit(context.Background(), statement(i)); err != nil {
				done <- err
				return
			}
		}
	}()
	for l.Pending() < 16<<10-2048 {
		time.Sleep(time.Millisecond)
	}
	closeWithin(t, l, 50*time.Millisecond)
	if err := <-done; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("blocked Emit after Close: %v", err)
	}
}

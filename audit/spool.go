package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Spool layout: a directory of segment files named NNNNNNNNNNNNNNNN.seg
// (decimal, increasing) plus a "cursor" file naming the first byte not yet
// delivered ("segment offset"). A segment is a sequence of frames:
//
//	u32 payload length | u32 CRC32C(payload) | payload
//	payload = u8 len | chain id | u8 len | record id | u8 len | kind | record JSON
//
// The short header lets the shipper key and label a Kafka message without
// decoding the JSON. The cursor is rewritten (temp file + rename) after
// each acknowledged batch; losing an update only causes redelivery.

const (
	frameHeader = 8
	segSuffix   = ".seg"
	cursorName  = "cursor"
	// maxFrame bounds one record so a corrupt length cannot make recovery
	// allocate gigabytes.
	maxFrame = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entry is one spooled record as the shipper sees it.
type entry struct {
	ChainID string
	ID      string
	Kind    string
	JSON    []byte
}

func appendFrame(dst []byte, chainID, id, kind string, js []byte) []byte {
	start := len(dst)
	dst = appendFrameHeader(dst, chainID, id, kind)
	dst = append(dst, js...)
	finishFrame(dst, start)
	return dst
}

// appendFrameHeader starts a frame: room for its length and checksum, and
// the short header. finishFrame fills them in once the JSON follows.
func appendFrameHeader(dst []byte, chainID, id, kind string) []byte {
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	for _, s := range [3]string{chainID, id, kind} {
		dst = append(dst, byte(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

// finishFrame writes the length and checksum of the frame starting at
// dst[start:], which runs to the end of dst.
func finishFrame(dst []byte, start int) {
	p := dst[start+frameHeader:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(p)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(p, castagnoli))
}

var errBadFrame = errors.New("audit: bad spool frame")

// parseFrame reads one frame at the start of b. n is 0 when b holds only
// part of a frame; err is set when the bytes cannot be a valid frame.
func parseFrame(b []byte) (e entry, n int, err error) {
	if len(b) < frameHeader {
		return e, 0, nil
	}
	plen := int(binary.BigEndian.Uint32(b))
	if plen < 3 || plen > maxFrame {
		return e, 0, errBadFrame
	}
	if len(b) < frameHeader+plen {
		return e, 0, nil
	}
	p := b[frameHeader : frameHeader+plen]
	if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return e, 0, errBadFrame
	}
	var fields [3][]byte
	for i := range fields {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return e, 0, errBadFrame
		}
		l := int(p[0])
		fields[i] = p[1 : 1+l]
		p = p[1+l:]
	}
	return entry{ChainID: internChain(fields[0]), ID: string(fields[1]), Kind: internKind(fields[2]), JSON: p}, frameHeader + plen, nil
}

// lastChain caches the chain id string: nearly every frame a shipper reads
// carries the same one, and the shipper runs once per record.
var lastChain atomic.Pointer[string]

func internChain(b []byte) string {
	if p := lastChain.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	lastChain.Store(&s)
	return s
}

// internKind returns the constant for a known kind without allocating.
func internKind(b []byte) string {
	switch string(b) {
	case string(KindStatement):
		return string(KindStatement)
	case string(KindCheckpoint):
		return string(KindCheckpoint)
	case string(KindStart):
		return string(KindStart)
	case string(KindStop):
		return string(KindStop)
	}
	return string(b)
}

type segment struct {
	num  uint64
	size int64
}

type cursor struct {
	seg uint64
	off int64
}

// spool is the bounded durable queue between Emit and the shipper.
type spool struct {
	dir    string
	max    int64
	segMax int64

	mu     sync.Mutex
	segs   []segment // undelivered segments, oldest first; the last is active
	active *os.File
	dirty  bool
	used   int64 // bytes appended (buffered or written) and not yet acknowledged
	// Appends go to buf under mu; flush writes them with one write() for
	// every group of concurrent emitters (group commit). appended and
	// written count bytes since open.
	buf      []byte
	appended int64
	written  int64
	wmu      sync.Mutex // held while writing; orders writes
	spare    []byte     // the other buffer, owned by the holder of wmu
	cur      cursor
	broken   error // set when a write failed; the spool then refuses appends
	space    chan struct{}
	notify   chan struct{}

	// reader state, shipper goroutine only (and close, after it)
	cursorDirty bool
	cursorAt    time.Time
	rf          *os.File
	rfNum       uint64
	rbuf        []byte
}

// recovery describes what opening a spool found.
type recovery struct {
	pending   int64 // undelivered bytes carried over
	records   int   // undelivered records carried over
	torn      int64 // bytes cut from a torn tail
	corrupt   []string
	truncated bool
}

func segName(n uint64) string { return fmt.Sprintf("%016d%s", n, segSuffix) }

func openSpool(dir string, max, segMax int64) (*spool, recovery, error) {
	var rec recovery
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, rec, fmt.Errorf("audit: spool directory: %w", err)
	}
	s := &spool{dir: dir, max: max, segMax: segMax, space: make(chan struct{}), notify: make(chan struct{}, 1)}
	names, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		return nil, rec, err
	}
	var nums []uint64
	for _, n := range names {
		v, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), segSuffix), 10, 64)
		if err == nil {
			nums = append(nums, v)
		}
	}
	slices.Sort(nums)
	s.cur = s.readCursor()
	if len(nums) > 0 && s.cur.seg < nums[0] {
		s.cur = cursor{seg: nums[0]}
	}
	for i, n := range nums {
		path := filepath.Join(dir, segName(n))
		if n < s.cur.seg {
			os.Remove(path)
			continue
		}
		good, count, bad, err := scanSegment(path)
		if err != nil {
			return nil, rec, err
		}
		if bad > 0 {
			if i == len(nums)-1 {
				rec.torn += bad
			} else {
				rec.corrupt = append(rec.corrupt, fmt.Sprintf("%s: %d unreadable bytes after offset %d", segName(n), bad, good))
			}
			if err := os.Truncate(path, good); err != nil {
				return nil, rec, fmt.Errorf("audit: truncating spool segment: %w", err)
			}
			rec.truncated = true
		}
		s.segs = append(s.segs, segment{num: n, size: good})
		rec.records += count
	}
	if len(s.segs) > 0 && s.cur.off > s.segs[0].size {
		s.cur.off = s.segs[0].size
	}
	if len(s.segs) > 0 && s.cur.off > 0 {
		// Records before the cursor in the first segment were delivered.
		delivered, _, _ := countFrames(filepath.Join(dir, segName(s.segs[0].num)), s.cur.off)
		rec.records -= delivered
	}
	s.used = s.usedLocked()
	rec.pending = s.used
	next := uint64(1)
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	if err := s.newSegment(next); err != nil {
		return nil, rec, err
	}
	if len(s.segs) == 1 {
		s.cur = cursor{seg: next}
	}
	return s, rec, nil
}

// scanSegment returns the length of the valid prefix, the number of whole
// records in it, and how many bytes follow it.
func scanSegment(path string) (good int64, count int, bad int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("audit: reading spool segment: %w", err)
	}
	off := 0
	for off < len(b) {
		_, n, perr := parseFrame(b[off:])
		if perr != nil || n == 0 {
			break
		}
		off += n
		count++
	}
	return int64(off), count, int64(len(b) - off), nil
}

func countFrames(path string, limit int64) (int, int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	if int64(len(b)) > limit {
		b = b[:limit]
	}
	off, count := 0, 0
	for off < len(b) {
		_, n, perr := parseFrame(b[off:])
		if perr != nil || n == 0 {
			break
		}
		off += n
		count++
	}
	return count, int64(off), nil
}

func (s *spool) readCursor() cursor {
	b, err := os.ReadFile(filepath.Join(s.dir, cursorName))
	if err != nil {
		return cursor{}
	}
	var c cursor
	if _, err := fmt.Sscanf(string(b), "%d %d", &c.seg, &c.off); err != nil || c.off < 0 {
		return cursor{}
	}
	return c
}

func (s *spool) writeCursor(c cursor) error {
	tmp := filepath.Join(s.dir, cursorName+".tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", c.seg, c.off), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, cursorName))
}

func (s *spool) usedLocked() int64 {
	var n int64
	for _, sg := range s.segs {
		n += sg.size
	}
	return n - s.cur.off + int64(len(s.buf))
}

// newSegment makes segment num the active one. Called with mu held (or
// before the spool is shared).
func (s *spool) newSegment(num uint64) error {
	if s.active != nil {
		if err := s.active.Sync(); err != nil {
			return err
		}
		if err := s.active.Close(); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(filepath.Join(s.dir, segName(num)), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("audit: creating spool segment: %w", err)
	}
	s.active = f
	s.segs = append(s.segs, segment{num: num})
	syncDir(s.dir)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// fits reports whether n more bytes stay within limit. Called with mu held.
func (s *spool) fits(n, limit int64) bool { return s.used+n <= limit || s.used == 0 }

// appendLocked queues one frame and returns the position flush must reach
// to have written it. Called with mu held.
func (s *spool) appendLocked(frame []byte) (int64, error) {
	if s.broken != nil {
		return 0, s.broken
	}
	s.buf = append(s.buf, frame...)
	s.appended += int64(len(frame))
	s.used += int64(len(frame))
	return s.appended, nil
}

// flush writes queued frames until position end is written. Whoever holds
// wmu writes everything queued so far, so concurrent emitters share one
// write(). The bytes reach the kernel before Emit returns, so a killed
// process loses nothing; fsync is grouped separately by sync.
func (s *spool) flush(end int64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	if s.written >= end || s.broken != nil {
		err := s.broken
		if s.written >= end {
			err = nil
		}
		s.mu.Unlock()
		return err
	}
	b := s.buf
	s.buf = s.spare[:0]
	last := s.segs[len(s.segs)-1]
	if last.size > 0 && last.size+int64(len(b)) > s.segMax {
		if err := s.newSegment(last.num + 1); err != nil {
			s.broken = err
			s.mu.Unlock()
			return err
		}
	}
	f := s.active
	s.mu.Unlock()

	_, werr := f.Write(b)

	s.mu.Lock()
	defer s.mu.Unlock()
	if werr != nil {
		s.broken = fmt.Errorf("audit: spool write: %w", werr)
		return s.broken
	}
	s.segs[len(s.segs)-1].size += int64(len(b))
	s.written += int64(len(b))
	s.dirty = true
	s.spare = b[:0]
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

// sync flushes the active segment to stable storage if it changed.
// The lock is not held during fsync so emitters keep appending; a
// segment rotation that closes the file meanwhile syncs it itself.
func (s *spool) sync() error {
	s.mu.Lock()
	f := s.active
	if !s.dirty || f == nil {
		s.mu.Unlock()
		return nil
	}
	s.dirty = false
	s.mu.Unlock()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// spaceChan returns a channel closed the next time delivered bytes leave
// the spool. Called with mu held.
func (s *spool) spaceChan() <-chan struct{} { return s.space }

// read returns up to maxCount records (and about maxBytes) from the
// delivery cursor, and the cursor after them. It runs on the shipper
// goroutine only. The entries' JSON aliases a buffer the next read reuses.
func (s *spool) read(maxCount int, maxBytes int) ([]entry, cursor, error) {
	s.mu.Lock()
	c := s.cur
	var size int64
	var active bool
	for len(s.segs) > 1 && s.segs[0].num < c.seg {
		s.segs = s.segs[1:]
	}
	idx := slices.IndexFunc(s.segs, func(sg segment) bool { return sg.num == c.seg })
	if idx < 0 {
		// The cursor names a segment that no longer exists: start at the
		// oldest one.
		c = cursor{seg: s.segs[0].num}
		s.cur = c
		idx = 0
	}
	size = s.segs[idx].size
	active = idx == len(s.segs)-1
	var nextSeg uint64
	if !active {
		nextSeg = s.segs[idx+1].num
	}
	s.mu.Unlock()

	if c.off >= size {
		if active {
			return nil, c, nil
		}
		// Move to the next segment; the caller acknowledges the move.
		return nil, cursor{seg: nextSeg}, nil
	}
	if s.rf == nil || s.rfNum != c.seg {
		if s.rf != nil {
			s.rf.Close()
		}
		f, err := os.Open(filepath.Join(s.dir, segName(c.seg)))
		if err != nil {
			return nil, c, fmt.Errorf("audit: opening spool segment: %w", err)
		}
		s.rf, s.rfNum = f, c.seg
	}
	want := min(int64(maxBytes), size-c.off)
	if cap(s.rbuf) < int(want) {
		s.rbuf = make([]byte, want)
	}
	buf := s.rbuf[:want]
	if _, err := s.rf.ReadAt(buf, c.off); err != nil && !errors.Is(err, io.EOF) {
		return nil, c, fmt.Errorf("audit: reading spool: %w", err)
	}
	var out []entry
	off := 0
	for len(out) < maxCount && off < len(buf) {
		e, n, err := parseFrame(buf[off:])
		if err != nil {
			return nil, c, fmt.Errorf("audit: spool segment %s offset %d: %w", segName(c.seg), c.off+int64(off), err)
		}
		if n == 0 {
			if off == 0 {
				// One frame larger than maxBytes: read it whole.
				need := int64(frameHeader + int(binaryLen(buf)))
				big := make([]byte, need)
				if _, err := s.rf.ReadAt(big, c.off); err != nil {
					return nil, c, fmt.Errorf("audit: reading spool: %w", err)
				}
				e, n, err = parseFrame(big)
				if err != nil || n == 0 {
					return nil, c, fmt.Errorf("audit: spool segment %s offset %d: %w", segName(c.seg), c.off, errBadFrame)
				}
				e.JSON = slices.Clone(e.JSON)
				return []entry{e}, cursor{seg: c.seg, off: c.off + int64(n)}, nil
			}
			break
		}
		out = append(out, e)
		off += n
	}
	return out, cursor{seg: c.seg, off: c.off + int64(off)}, nil
}

func binaryLen(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// ack records that everything before c was delivered, deletes segments
// that are wholly delivered and wakes emitters waiting for space.
func (s *spool) ack(c cursor) error {
	s.mu.Lock()
	s.cur = c
	var drop []uint64
	for len(s.segs) > 1 && s.segs[0].num < c.seg {
		drop = append(drop, s.segs[0].num)
		s.segs = s.segs[1:]
	}
	s.used = s.usedLocked()
	close(s.space)
	s.space = make(chan struct{})
	s.mu.Unlock()
	// The cursor is persisted at most every cursorEvery (and before
	// segments are removed, and at close): a crash in between only
	// redelivers records, which the chain marks as identical duplicates.
	var err error
	s.cursorDirty = true
	if len(drop) > 0 || time.Since(s.cursorAt) >= cursorEvery {
		err = s.persistCursor()
	}
	for _, n := range drop {
		if s.rf != nil && s.rfNum == n {
			s.rf.Close()
			s.rf = nil
		}
		os.Remove(filepath.Join(s.dir, segName(n)))
	}
	return err
}

const cursorEvery = 50 * time.Millisecond

func (s *spool) persistCursor() error {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	s.cursorDirty, s.cursorAt = false, time.Now()
	return s.writeCursor(c)
}

// pending returns the bytes not yet delivered.
func (s *spool) pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

func (s *spool) close() error {
	var cerr error
	if s.cursorDirty {
		cerr = s.persistCursor()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.active != nil {
		err = errors.Join(s.active.Sync(), s.active.Close())
		s.active = nil
	}
	if s.rf != nil {
		s.rf.Close()
		s.rf = nil
	}
	if s.broken == nil {
		s.broken = errors.New("audit: spool closed")
	}
	return errors.Join(err, cerr)
}

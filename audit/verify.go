package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"slices"
	"sort"
)

// ProblemKind classifies what Verify found wrong.
type ProblemKind string

// Problem kinds.
const (
	// ProblemModified: a record's hash does not match its content.
	ProblemModified ProblemKind = "modified"
	// ProblemMissing: sequence numbers absent from a chain (a gap).
	ProblemMissing ProblemKind = "missing"
	// ProblemReordered: a record arrived after a later one of its chain.
	ProblemReordered ProblemKind = "reordered"
	// ProblemBrokenLink: a record's prev_hash is not its predecessor's
	// hash (a record replaced or inserted with recomputed hashes).
	ProblemBrokenLink ProblemKind = "broken_link"
	// ProblemConflict: two different records claim one sequence number.
	ProblemConflict ProblemKind = "conflict"
	// ProblemForgedCheckpoint: a checkpoint's signature does not verify
	// under the key, or it names a hash the chain does not have.
	ProblemForgedCheckpoint ProblemKind = "forged_checkpoint"
	// ProblemUnreadable: input that is not a record.
	ProblemUnreadable ProblemKind = "unreadable"
)

// Problem is one finding of Verify.
type Problem struct {
	Kind    ProblemKind `json:"kind"`
	ChainID string      `json:"chain_id,omitempty"`
	Seq     uint64      `json:"seq,omitempty"`
	// SeqEnd is set for a run of missing records: Seq through SeqEnd.
	SeqEnd   uint64 `json:"seq_end,omitempty"`
	RecordID string `json:"record_id,omitempty"`
	// Position is the 0-based index of the record in the input.
	Position int    `json:"position"`
	Detail   string `json:"detail"`
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s: chain %s seq %d", p.Kind, p.ChainID, p.Seq)
	if p.SeqEnd > p.Seq {
		s += fmt.Sprintf("-%d", p.SeqEnd)
	}
	if p.RecordID != "" {
		s += " record " + p.RecordID
	}
	return s + ": " + p.Detail
}

// ChainReport summarizes one chain.
type ChainReport struct {
	ID      string `json:"id"`
	Records int    `json:"records"` // distinct sequence numbers seen
	First   uint64 `json:"first_seq"`
	Last    uint64 `json:"last_seq"`
	// Checkpoints is the number of valid signed checkpoints; SignedThrough
	// is the highest sequence a valid checkpoint covers (0: none).
	Checkpoints   int    `json:"checkpoints"`
	SignedThrough uint64 `json:"signed_through"`
	// LastCheckpoint is the sequence of the last valid checkpoint record.
	LastCheckpoint uint64 `json:"last_checkpoint"`
	// Stopped is true when the chain ends with a guard.stop record.
	Stopped bool `json:"stopped"`
}

// Report is the result of Verify. OK reports whether nothing was wrong.
type Report struct {
	Records    int           `json:"records"`    // records read
	Duplicates int           `json:"duplicates"` // identical repeats (harmless)
	Chains     []ChainReport `json:"chains"`
	Problems   []Problem     `json:"problems"`
	// KeyChecked is true when a public key was given and checkpoint
	// signatures were verified; otherwise checkpoints are only checked
	// against the chain.
	KeyChecked bool `json:"key_checked"`
}

// OK reports whether verification found no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Unsigned returns how many records of each chain follow its last valid
// checkpoint (they are hash-chained but not yet vouched for by a
// signature). It is informational: a running or crashed process has such a
// tail.
func (r *Report) Unsigned() int {
	n := 0
	for _, c := range r.Chains {
		if c.Last > c.LastCheckpoint {
			n += int(c.Last - c.LastCheckpoint)
		}
	}
	return n
}

type seen struct {
	hash, prev string
	id         string
	pos        int
}

type chainState struct {
	id      string
	recs    map[uint64]seen
	maxSeq  uint64
	cps     []cpAt
	stopped uint64
}

type cpAt struct {
	rec *Checkpoint
	seq uint64
	pos int
	id  string
}

// Verify checks records in the order they were read (a file, or one Kafka
// partition). Records of different chains may interleave. Identical
// duplicates are counted and pass. With pub set, every checkpoint must carry
// a valid signature under it; with pub nil, signatures are not checked.
// An error in the iterator stops verification and is returned.
func Verify(records iter.Seq2[*Record, error], pub ed25519.PublicKey) (Report, error) {
	var rep Report
	rep.KeyChecked = pub != nil
	chains := map[string]*chainState{}
	var order []string
	pos := -1
	for rec, err := range records {
		pos++
		if err != nil {
			if ue, ok := err.(*UnreadableError); ok {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemUnreadable, Position: pos, Detail: ue.Error()})
				continue
			}
			return rep, err
		}
		rep.Records++
		c := chains[rec.Chain.ID]
		if c == nil {
			c = &chainState{id: rec.Chain.ID, recs: map[uint64]seen{}}
			chains[rec.Chain.ID] = c
			order = append(order, rec.Chain.ID)
		}
		h, herr := Hash(rec)
		if herr != nil || h != rec.Chain.Hash {
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemModified, ChainID: c.id, Seq: rec.Chain.Sequence,
				RecordID: rec.ID, Position: pos, Detail: "content does not match its hash"})
			continue
		}
		s := rec.Chain.Sequence
		if old, ok := c.recs[s]; ok {
			if old.hash == h {
				rep.Duplicates++
			} else {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemConflict, ChainID: c.id, Seq: s,
					RecordID: rec.ID, Position: pos, Detail: fmt.Sprintf("differs from record %s at position %d with the same sequence", old.id, old.pos)})
			}
			continue
		}
		if s < c.maxSeq {
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemReordered, ChainID: c.id, Seq: s,
				RecordID: rec.ID, Position: pos, Detail: fmt.Sprintf("arrived after sequence %d", c.maxSeq)})
		}
		c.recs[s] = seen{hash: h, prev: rec.Chain.PrevHash, id: rec.ID, pos: pos}
		c.maxSeq = max(c.maxSeq, s)
		if rec.Kind == KindCheckpoint && rec.Checkpoint != nil {
			c.cps = append(c.cps, cpAt{rec: rec.Checkpoint, seq: s, pos: pos, id: rec.ID})
		} else if rec.Kind == KindCheckpoint {
			rep.Problems = append(rep.Problems, Problem{Kind: ProblemForgedCheckpoint, ChainID: c.id, Seq: s,
				RecordID: rec.ID, Position: pos, Detail: "checkpoint record without a checkpoint"})
		}
		if rec.Kind == KindStop {
			c.stopped = s
		}
	}
	for _, id := range order {
		c := chains[id]
		cr := ChainReport{ID: id, Records: len(c.recs), Last: c.maxSeq}
		seqs := make([]uint64, 0, len(c.recs))
		for s := range c.recs {
			seqs = append(seqs, s)
		}
		slices.Sort(seqs)
		if len(seqs) > 0 {
			cr.First = seqs[0]
		}
		// A chain starts at 1: anything before the first record seen is
		// missing too.
		expect := uint64(1)
		for _, s := range seqs {
			if s > expect {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemMissing, ChainID: id, Seq: expect, SeqEnd: s - 1,
					Position: c.recs[s].pos, Detail: fmt.Sprintf("%d record(s) absent", s-expect)})
			} else if p, ok := c.recs[s-1]; ok && c.recs[s].prev != p.hash {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemBrokenLink, ChainID: id, Seq: s, RecordID: c.recs[s].id,
					Position: c.recs[s].pos, Detail: "prev_hash is not the hash of the record before it"})
			} else if s == 1 && c.recs[s].prev != "" {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemBrokenLink, ChainID: id, Seq: s, RecordID: c.recs[s].id,
					Position: c.recs[s].pos, Detail: "first record of a chain has a prev_hash"})
			}
			expect = s + 1
		}
		for _, cp := range c.cps {
			bad := func(d string) {
				rep.Problems = append(rep.Problems, Problem{Kind: ProblemForgedCheckpoint, ChainID: id, Seq: cp.seq,
					RecordID: cp.id, Position: cp.pos, Detail: d})
			}
			covered, ok := c.recs[cp.rec.Seq]
			if cp.rec.Seq >= cp.seq {
				bad("checkpoint covers a record after itself")
				continue
			}
			if ok && covered.hash != cp.rec.Hash {
				bad(fmt.Sprintf("names hash %.12s… for sequence %d; the chain has %.12s…", cp.rec.Hash, cp.rec.Seq, covered.hash))
				continue
			}
			if pub != nil {
				sig, err := base64.StdEncoding.DecodeString(cp.rec.Signature)
				if err != nil || !ed25519.Verify(pub, CheckpointMessage(id, cp.rec.Seq, cp.rec.Hash), sig) {
					bad("signature does not verify under the given key")
					continue
				}
			}
			cr.Checkpoints++
			cr.SignedThrough = max(cr.SignedThrough, cp.rec.Seq)
			cr.LastCheckpoint = max(cr.LastCheckpoint, cp.seq)
		}
		if pub == nil {
			cr.Checkpoints, cr.SignedThrough, cr.LastCheckpoint = len(c.cps), 0, 0
		}
		cr.Stopped = c.stopped != 0
		rep.Chains = append(rep.Chains, cr)
	}
	sort.SliceStable(rep.Problems, func(i, j int) bool { return rep.Problems[i].Position < rep.Problems[j].Position })
	return rep, nil
}

// UnreadableError is yielded by ReadRecords and KafkaRecords for input
// that is not a record; Verify reports it as ProblemUnreadable and goes on.
type UnreadableError struct {
	// Line is the 1-based line (file) or message number (Kafka).
	Line int
	Err  error
}

func (e *UnreadableError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the decoding error.
func (e *UnreadableError) Unwrap() error { return e.Err }

// ReadRecords iterates over JSON-lines records in r. A line that is not a
// record yields an error that Verify reports as ProblemUnreadable; a read
// error ends the iteration with that error. Blank lines are skipped.
func ReadRecords(r io.Reader) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		br := bufio.NewReaderSize(r, 1<<16)
		line := 0
		for {
			b, err := br.ReadBytes('\n')
			if len(b) > 0 {
				line++
				b = bytes.TrimSpace(b)
				if len(b) > 0 {
					rec, perr := DecodeRecord(b)
					if perr != nil {
						if !yield(nil, &UnreadableError{Line: line, Err: perr}) {
							return
						}
					} else if !yield(rec, nil) {
						return
					}
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
		}
	}
}

// DecodeRecord parses one record's JSON.
func DecodeRecord(b []byte) (*Record, error) {
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, err
	}
	if rec.Chain.ID == "" || rec.Chain.Hash == "" {
		return nil, fmt.Errorf("not an audit record (no chain)")
	}
	return &rec, nil
}

// VerifyReader verifies JSON-lines records read from r (see Verify).
func VerifyReader(r io.Reader, pub ed25519.PublicKey) (Report, error) {
	return Verify(ReadRecords(r), pub)
}

// RecordsOf iterates over a slice of records (for Verify).
func RecordsOf(recs []Record) iter.Seq2[*Record, error] {
	return func(yield func(*Record, error) bool) {
		for i := range recs {
			if !yield(&recs[i], nil) {
				return
			}
		}
	}
}

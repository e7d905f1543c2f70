package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// signedTrail produces a real trail through a Logger: 40 statements with a
// checkpoint every 10 records, delivered to a writer sink as JSON lines.
func signedTrail(t *testing.T) ([]Record, ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv := testKey(t)
	var buf bytes.Buffer
	l, err := New(Config{SpoolDir: t.TempDir(), Sinks: []Sink{NewWriterSink(&buf)}, SigningKey: priv, CheckpointEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := l.Emit(context.Background(), statement(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := closeWithin(t, l, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for rec, err := range ReadRecords(&buf) {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, *rec)
	}
	return recs, pub, priv
}

func problems(t *testing.T, recs []Record, pub ed25519.PublicKey) map[ProblemKind]int {
	t.Helper()
	rep, err := Verify(RecordsOf(recs), pub)
	if err != nil {
		t.Fatal(err)
	}
	out := map[ProblemKind]int{}
	for _, p := range rep.Problems {
		out[p.Kind]++
	}
	return out
}

func indexOfStatement(recs []Record, n int) int {
	for i, r := range recs {
		if r.Kind == KindStatement {
			if n == 0 {
				return i
			}
			n--
		}
	}
	return -1
}

// rechain recomputes hashes and links from index i on, as a forger who
// knows the scheme (but not the key) would.
func rechain(t *testing.T, recs []Record, from int) {
	t.Helper()
	for i := from; i < len(recs); i++ {
		if i > 0 {
			recs[i].Chain.PrevHash = recs[i-1].Chain.Hash
			recs[i].Chain.Sequence = recs[i-1].Chain.Sequence + 1
		}
		h, err := Hash(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		recs[i].Chain.Hash = h
	}
}

func TestVerifyAcceptsGenuineTrailWithDuplicates(t *testing.T) {
	recs, pub, _ := signedTrail(t)
	rep := requireVerified(t, recs, pub)
	if rep.Chains[0].Checkpoints < 4 || rep.Unsigned() != 0 || !rep.Chains[0].Stopped {
		t.Fatalf("report %+v", rep.Chains)
	}
	// A retried batch: records 10-20 again, identical.
	dup := append(append([]Record(nil), recs...), recs[10:20]...)
	rep = requireVerified(t, dup, pub)
	if rep.Duplicates != 10 {
		t.Fatalf("want 10 duplicates counted, got %d", rep.Duplicates)
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	recs, pub, _ := signedTrail(t)
	clone := func() []Record {
		out := make([]Record, len(recs))
		copy(out, recs)
		return out
	}
	tests := []struct {
		name   string
		tamper func([]Record) []Record
		want   ProblemKind
	}{
		{"modified statement", func(r []Record) []Record {
			i := indexOfStatement(r, 5)
			r[i].Statement = "SELECT 1"
			return r
		}, ProblemModified},
		{"modified outcome", func(r []Record) []Record {
			i := indexOfStatement(r, 7)
			o := *r[i].Outcome
			o.RowsReturned = 1000
			r[i].Outcome = &o
			return r
		}, ProblemModified},
		{"deleted record", func(r []Record) []Record {
			i := indexOfStatement(r, 12)
			return append(r[:i], r[i+1:]...)
		}, ProblemMissing},
		{"reordered pair", func(r []Record) []Record {
			i := indexOfStatement(r, 20)
			r[i], r[i+1] = r[i+1], r[i]
			return r
		}, ProblemReordered},
		{"replaced record with recomputed hash", func(r []Record) []Record {
			i := indexOfStatement(r, 3)
			r[i].Statement = "SELECT 1"
			h, _ := Hash(&r[i])
			r[i].Chain.Hash = h
			return r
		}, ProblemBrokenLink},
		{"deleted record and chain rewritten after it", func(r []Record) []Record {
			i := indexOfStatement(r, 30)
			r = append(r[:i], r[i+1:]...)
			rechain(t, r, i)
			return r
		}, ProblemForgedCheckpoint},
		{"checkpoint signed with another key", func(r []Record) []Record {
			seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
			other := ed25519.NewKeyFromSeed(seed)
			for i := range r {
				if r[i].Kind == KindCheckpoint {
					cp := *r[i].Checkpoint
					cp.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(other, CheckpointMessage(r[i].Chain.ID, cp.Seq, cp.Hash)))
					r[i].Checkpoint = &cp
					h, _ := Hash(&r[i])
					r[i].Chain.Hash = h
					rechain(t, r, i+1)
					break
				}
			}
			return r
		}, ProblemForgedCheckpoint},
		{"checkpoint moved to another hash", func(r []Record) []Record {
			for i := range r {
				if r[i].Kind == KindCheckpoint {
					cp := *r[i].Checkpoint
					cp.Seq--
					r[i].Checkpoint = &cp
					h, _ := Hash(&r[i])
					r[i].Chain.Hash = h
					rechain(t, r, i+1)
					break
				}
			}
			return r
		}, ProblemForgedCheckpoint},
		{"forged record appended to the chain", func(r []Record) []Record {
			last := r[len(r)-1]
			f := *statement(99)
			f.ID, f.Version, f.Time = "forged", SchemaVersion, last.Time
			f.Chain = Chain{ID: last.Chain.ID, Sequence: last.Chain.Sequence, PrevHash: last.Chain.PrevHash}
			h, _ := Hash(&f)
			f.Chain.Hash = h
			return append(r, f)
		}, ProblemConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.tamper(clone()), pub)
			if got[tc.want] == 0 {
				t.Fatalf("want a %s problem, got %v", tc.want, got)
			}
		})
	}
}

func TestVerifyReaderReportsGarbage(t *testing.T) {
	recs, pub, _ := signedTrail(t)
	var buf bytes.Buffer
	for i, r := range recs {
		b, _ := json.Marshal(r)
		buf.Write(b)
		buf.WriteByte('\n')
		if i == 3 {
			buf.WriteString("{not json\n")
		}
	}
	rep, err := VerifyReader(&buf, pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ProblemUnreadable || rep.Records != len(recs) {
		t.Fatalf("got %+v", rep.Problems)
	}
}

// TestCanonicalHashIsStable: a record's hash survives a JSON round trip with
// non-ASCII text, HTML-sensitive characters, maps and nanosecond times.
func TestCanonicalHashIsStable(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(Config{SpoolDir: t.TempDir(), Sinks: []Sink{NewWriterSink(&buf)}})
	if err != nil {
		t.Fatal(err)
	}
	rec := statement(1)
	rec.Statement = "SELECT '<b>&</b>', 'ünïcödé', E'\\x00' -- \u2028 \xff"
	rec.Identity.Attributes = map[string]string{"z": "1", "a": "2", "team": "data"}
	rec.Time = time.Date(2026, 11, 28, 1, 2, 3, 456789123, time.FixedZone("X", 3600))
	rec.Duration = 1234567 * time.Nanosecond
	if err := l.Emit(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := closeWithin(t, l, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	rep, err := VerifyReader(strings.NewReader(buf.String()), nil)
	if err != nil || !rep.OK() || rep.Records != 3 {
		t.Fatalf("report %+v, err %v", rep, err)
	}
	// The hash is SHA-256 over the record's JSON with chain.hash empty.
	line := strings.Split(buf.String(), "\n")[1]
	canon := strings.Replace(line, rec.Chain.Hash, "", 1)
	sum := sha256.Sum256([]byte(canon))
	if hex.EncodeToString(sum[:]) != rec.Chain.Hash {
		t.Fatal("hash is not SHA-256 of the canonical line")
	}
}

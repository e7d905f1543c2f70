package audit

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// oddStrings are texts whose JSON encoding has edge cases: escapes,
// HTML-unsafe bytes, line separators, invalid UTF-8, a literal \ufffd.
var oddStrings = []string{
	"", "plain", "SELECT * FROM t WHERE a < 1 AND b > 2 && c", `"quoted" \back\slash`,
	"\x00\x01\x07\b\f\n\r\t\x1f\x7f", "\u2028\u2029", "é ü 日本 🦀", "\\ufffd", "\ufffd",
	"\xff", "a\xffb\xfe", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "<script>&amp;</script>",
	strings.Repeat("x", 5000),
}

// encoderCases is a varied set of records for comparing the hand encoder
// with encoding/json.
func encoderCases() []*Record {
	var out []*Record
	times := []time.Time{
		{}, time.Unix(0, 0).UTC(), time.Unix(1700000000, 123).UTC(), time.Unix(1700000000, 120000000).UTC(),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 5*3600+1800)),
		time.Date(2026, 1, 2, 3, 4, 5, 6, time.Local),
	}
	for i, s := range oddStrings {
		r := statement(i)
		r.Version = SchemaVersion
		r.ID = s
		r.Kind = Kind(s)
		r.Time = times[i%len(times)]
		r.Statement = s
		r.Identity.Subject = s
		r.Identity.Roles = []string{s, "b"}
		r.Identity.Attributes = map[string]string{s: s, "z": "1", "a": s}
		r.OnBehalfOf[0].Attributes = map[string]string{}
		r.Objects = []string{s}
		r.Dangers = []string{}
		r.Decision.Message = s
		r.Outcome.Error = s
		r.Masked = append(r.Masked, MaskedColumn{Column: s, Rule: s, Cells: -5})
		r.Detail = s
		r.Fingerprint = s
		out = append(out, r)
	}
	big := map[string]string{}
	for i := range 40 {
		big[fmt.Sprintf("k%02d\xc3", 40-i)] = fmt.Sprint(i)
		big[fmt.Sprintf("K%d", i)] = ""
	}
	out = append(out,
		&Record{},
		&Record{Version: -1, Duration: -time.Second, StatementLen: 1 << 40, InTx: true,
			Identity: &Principal{}, OnBehalfOf: []Principal{{}, {Roles: []string{}}},
			Decision: &Decision{Observed: true}, Outcome: &Outcome{RowsReturned: -1, RowsAffected: 1 << 62},
			Masked: []MaskedColumn{{}}, Checkpoint: &Checkpoint{}},
		&Record{Kind: KindCheckpoint, Time: times[2], Checkpoint: &Checkpoint{Seq: 1<<64 - 1, Hash: "ab", KeyID: "k", Signature: "s+/="},
			Chain: Chain{ID: "c", Sequence: 9, PrevHash: "p", Hash: "h"}},
		&Record{Time: times[3], Identity: &Principal{Subject: "s", Attributes: big}},
		&Record{Time: times[2], Decision: &Decision{Effect: "allow", Rule: "r", Message: "m", Policy: "p", Observed: true, ApprovalID: "a", Reviewer: "v"},
			Outcome: &Outcome{Status: "ok", RowsReturned: 3, RowsAffected: 4, SQLState: "23505", Error: "e"}, Session: "s", Database: "d", Driver: "dr", Request: "q", Command: "SELECT", Effect: "read"},
	)
	return out
}

// TestEncoderMatchesJSON: the hand encoder writes exactly the bytes the
// encoding/json canonical form wrote, so hashes of existing trails still
// verify; where it declines, marshalBody still gives encoding/json's bytes.
func TestEncoderMatchesJSON(t *testing.T) {
	fast := 0
	for i, rec := range encoderCases() {
		checkEncoder(t, fmt.Sprint("case ", i), rec)
		if _, ok := appendBody(nil, rec); ok {
			fast++
		}
	}
	if fast < 10 {
		t.Fatalf("only %d cases took the hand encoder", fast)
	}
}

func checkEncoder(t *testing.T, name string, rec *Record) {
	t.Helper()
	want, werr := marshalBodyJSON(rec)
	got, gerr := marshalBody(rec)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s: encoding/json error %v, marshalBody error %v", name, werr, gerr)
	}
	if werr != nil {
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: marshalBody differs from encoding/json\n got %q\nwant %q", name, got, want)
	}
	if fast, ok := appendBody([]byte("prefix"), rec); ok && !bytes.Equal(fast[len("prefix"):], want) {
		t.Fatalf("%s: hand encoder differs from encoding/json\n got %q\nwant %q", name, fast[6:], want)
	}
	// The frame the logger writes is the old seal-then-frame, byte for byte.
	js, hash := seal(want, "chain-1", 42, "prevhash")
	frame, fhash := appendSealedFrame([]byte("x"), "chain-1", "id", "kind", got, 42, "prevhash")
	if old := appendFrame([]byte("x"), "chain-1", "id", "kind", js); !bytes.Equal(frame, old) || fhash != hash {
		t.Fatalf("%s: sealed frame differs\n got %q\nwant %q", name, frame, old)
	}
}

// FuzzEncoderMatchesJSON: for any field text the hand encoder writes the
// bytes encoding/json writes, or declines.
func FuzzEncoderMatchesJSON(f *testing.F) {
	for i, s := range oddStrings {
		f.Add(s, oddStrings[(i+3)%len(oddStrings)], int64(i)*1e9+int64(i), int64(i-3))
	}
	f.Fuzz(func(t *testing.T, a, b string, nanos, n int64) {
		rec := statement(int(n))
		rec.ID, rec.Kind, rec.Statement, rec.Detail = a, Kind(b), a, b
		rec.Time = time.Unix(0, nanos).UTC()
		rec.Duration, rec.StatementLen = time.Duration(n), int(n)
		rec.Identity.Attributes = map[string]string{a: b, b: a}
		rec.Identity.Roles = []string{b}
		rec.Decision.Rule, rec.Outcome.Error, rec.Outcome.RowsAffected = b, a, n
		rec.Masked[0].Column, rec.Masked[0].Cells = b, n
		rec.Checkpoint = &Checkpoint{Seq: uint64(n), Hash: a, KeyID: b, Signature: a}
		checkEncoder(t, "fuzz", rec)
	})
}

// BenchmarkEncode is the canonical encoding of one statement record alone.
func BenchmarkEncode(b *testing.B) {
	rec := statement(1)
	rec.ID, rec.Time = "0192f0c4-7d2e-7b3c-9a4e-1f2d3c4b5a69", time.Now().UTC()
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendMarshalBody(buf[:0], rec)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			marshalBodyJSON(rec)
		}
	})
}

package audit

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendBody appends the canonical body of rec (its encoding/json form with
// a zero Chain, up to but not including the chain object) to dst, written by
// hand because reflection-based encoding/json was most of Emit's CPU time.
// ok is false when the record holds something the hand encoder does not
// reproduce byte for byte (invalid UTF-8, a time that is not UTC or outside
// years 0-9999); marshalBody then takes the encoding/json path, which stays
// the definition of the canonical form. TestEncoderMatchesJSON and
// FuzzEncoderMatchesJSON hold the two to the same bytes.
func appendBody(dst []byte, rec *Record) (_ []byte, ok bool) {
	e := encoder{b: dst, ok: true}
	e.raw(`{"v":`)
	e.b = strconv.AppendInt(e.b, int64(rec.Version), 10)
	e.raw(`,"id":`)
	e.str(rec.ID)
	e.raw(`,"kind":`)
	e.str(string(rec.Kind))
	e.raw(`,"time":"`)
	n0 := len(e.b)
	e.b = rec.Time.AppendFormat(e.b, time.RFC3339Nano)
	// The checks Time.MarshalJSON makes: a 4-digit year; and UTC, so no
	// offset needs its range check.
	if len(e.b) < n0+5 || e.b[n0+4] != '-' || e.b[len(e.b)-1] != 'Z' {
		return dst, false
	}
	e.raw(`"`)
	if rec.Duration != 0 {
		e.raw(`,"duration_ns":`)
		e.b = strconv.AppendInt(e.b, int64(rec.Duration), 10)
	}
	if rec.Identity != nil {
		e.raw(`,"identity":`)
		e.principal(rec.Identity)
	}
	if len(rec.OnBehalfOf) > 0 {
		e.raw(`,"on_behalf_of":[`)
		for i := range rec.OnBehalfOf {
			if i > 0 {
				e.raw(`,`)
			}
			e.principal(&rec.OnBehalfOf[i])
		}
		e.raw(`]`)
	}
	e.optStr(`,"session":`, rec.Session)
	e.optStr(`,"database":`, rec.Database)
	e.optStr(`,"driver":`, rec.Driver)
	e.optStr(`,"request":`, rec.Request)
	if rec.InTx {
		e.raw(`,"in_tx":true`)
	}
	e.optStr(`,"statement":`, rec.Statement)
	if rec.StatementLen != 0 {
		e.raw(`,"statement_len":`)
		e.b = strconv.AppendInt(e.b, int64(rec.StatementLen), 10)
	}
	e.optStr(`,"fingerprint":`, rec.Fingerprint)
	e.optStr(`,"command":`, rec.Command)
	e.optStr(`,"effect":`, rec.Effect)
	e.strs(`,"objects":`, rec.Objects)
	e.strs(`,"dangers":`, rec.Dangers)
	if d := rec.Decision; d != nil {
		e.raw(`,"decision":{"effect":`)
		e.str(d.Effect)
		e.optStr(`,"rule":`, d.Rule)
		e.optStr(`,"message":`, d.Message)
		e.optStr(`,"policy":`, d.Policy)
		if d.Observed {
			e.raw(`,"observed":true`)
		}
		e.optStr(`,"approval_id":`, d.ApprovalID)
		e.optStr(`,"reviewer":`, d.Reviewer)
		e.raw(`}`)
	}
	if o := rec.Outcome; o != nil {
		e.raw(`,"outcome":{"status":`)
		e.str(o.Status)
		e.optInt(`,"rows_returned":`, o.RowsReturned)
		e.optInt(`,"rows_affected":`, o.RowsAffected)
		e.optStr(`,"sqlstate":`, o.SQLState)
		e.optStr(`,"error":`, o.Error)
		e.raw(`}`)
	}
	if len(rec.Masked) > 0 {
		e.raw(`,"masked":[`)
		for i := range rec.Masked {
			m := &rec.Masked[i]
			if i > 0 {
				e.raw(`,`)
			}
			e.raw(`{"column":`)
			e.str(m.Column)
			e.optStr(`,"class":`, m.Class)
			e.optStr(`,"rule":`, m.Rule)
			e.optStr(`,"strategy":`, m.Strategy)
			e.raw(`,"cells":`)
			e.b = strconv.AppendInt(e.b, m.Cells, 10)
			e.raw(`}`)
		}
		e.raw(`]`)
	}
	e.optStr(`,"detail":`, rec.Detail)
	if c := rec.Checkpoint; c != nil {
		e.raw(`,"checkpoint":{"seq":`)
		e.b = strconv.AppendUint(e.b, c.Seq, 10)
		e.raw(`,"hash":`)
		e.str(c.Hash)
		e.raw(`,"key_id":`)
		e.str(c.KeyID)
		e.raw(`,"sig":`)
		e.str(c.Signature)
		e.raw(`}`)
	}
	e.raw(`,`)
	if !e.ok {
		return dst, false
	}
	return e.b, true
}

type encoder struct {
	b  []byte
	ok bool
}

func (e *encoder) raw(s string) { e.b = append(e.b, s...) }

func (e *encoder) optStr(key, s string) {
	if s != "" {
		e.raw(key)
		e.str(s)
	}
}

func (e *encoder) optInt(key string, n int64) {
	if n != 0 {
		e.raw(key)
		e.b = strconv.AppendInt(e.b, n, 10)
	}
}

func (e *encoder) strs(key string, ss []string) {
	if len(ss) == 0 {
		return
	}
	e.raw(key)
	e.raw(`[`)
	for i, s := range ss {
		if i > 0 {
			e.raw(`,`)
		}
		e.str(s)
	}
	e.raw(`]`)
}

func (e *encoder) principal(p *Principal) {
	e.raw(`{"subject":`)
	e.str(p.Subject)
	e.optStr(`,"kind":`, p.Kind)
	e.strs(`,"roles":`, p.Roles)
	if len(p.Attributes) > 0 {
		e.raw(`,"attributes":{`)
		var arr [16]string
		keys := arr[:0]
		for k := range p.Attributes {
			keys = append(keys, k)
		}
		// encoding/json sorts string keys by their raw bytes.
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				e.raw(`,`)
			}
			e.str(k)
			e.raw(`:`)
			e.str(p.Attributes[k])
		}
		e.raw(`}`)
	}
	e.raw(`}`)
}

const hexDigits = "0123456789abcdef"

// htmlSafe marks the ASCII bytes encoding/json writes unescaped (it escapes
// control characters, '"', '\\' and, for HTML safety, '<', '>' and '&').
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// str appends s as a JSON string exactly as encoding/json does. Invalid
// UTF-8 clears e.ok: encoding/json writes it as the escape \ufffd, which a
// decoder reads back as a raw U+FFFD, and the canonical form is that of the
// decoded record (marshalBody's slow path works it out).
func (e *encoder) str(s string) {
	b := append(e.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.ok = false
			i++
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	e.b = append(b, '"')
}

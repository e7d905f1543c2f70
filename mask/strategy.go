package mask

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"time"
)

// The built-in strategy names, as written in Config.
const (
	// Redact replaces a value with a fixed token per class ("[masked:email]"
	// for text, 0 for numbers, 1970-01-01 for times).
	Redact = "redact"
	// Partial keeps a part that identifies nothing alone: the last 4 of a
	// card, IBAN, SSN or phone number (only when at least 5 characters stay
	// hidden), the domain of an email, initials of a name, the year of a
	// date. Secrets are redacted.
	Partial = "partial"
	// Hash replaces a value with a keyed HMAC-SHA256 token: equal inputs give
	// equal tokens, so joins, GROUP BY and DISTINCT still work.
	Hash = "hash"
	// Null replaces a value with NULL.
	Null = "null"
	// Clear returns the value unmasked (for rules that carve out columns).
	Clear = "clear"
)

// Func is a custom strategy registered with WithStrategy. It receives the
// value the driver returned (int64, float64, bool, []byte, string,
// time.Time) and returns its replacement. It must not modify v: a []byte may
// alias the driver's buffer. It is called from one goroutine per result set.
type Func func(class Class, v driver.Value) driver.Value

type stratKind uint8

const (
	sRedact stratKind = iota
	sPartial
	sHash
	sNull
	sClear
	sCustom
)

type strategy struct {
	name string
	kind stratKind
	fn   Func
}

// shape is what the database type says a caller will scan a column into.
type shape uint8

const (
	shapeUnknown shape = iota
	shapeText
	shapeNumber
	shapeTime
	shapeJSON
	shapeBool
	shapeBinary
	shapeUUID
)

func shapeOf(dbType string) shape {
	t := strings.ToUpper(dbType)
	switch {
	case t == "":
		return shapeUnknown
	case strings.Contains(t, "JSON"):
		return shapeJSON
	case strings.Contains(t, "INT"), strings.Contains(t, "NUMERIC"), strings.Contains(t, "DECIMAL"),
		strings.Contains(t, "FLOAT"), strings.Contains(t, "DOUBLE"), t == "REAL", t == "MONEY", t == "OID":
		return shapeNumber
	case strings.Contains(t, "DATE"), strings.Contains(t, "TIME"), t == "YEAR":
		return shapeTime
	case strings.Contains(t, "BOOL"), t == "BIT":
		return shapeBool
	case t == "UUID":
		return shapeUUID
	case t == "BYTEA", strings.Contains(t, "BLOB"), strings.Contains(t, "BINARY"):
		return shapeBinary
	}
	return shapeText
}

// masker applies strategies; one per Plan, used from one goroutine.
type masker struct {
	key []byte
	mac hash.Hash
	buf []byte
}

func (m *masker) sum(class Class, v string) []byte {
	if m.mac == nil {
		m.mac = hmac.New(sha256.New, m.key)
	}
	m.mac.Reset()
	m.mac.Write([]byte(class))
	m.mac.Write([]byte{0})
	m.mac.Write([]byte(v))
	m.buf = m.mac.Sum(m.buf[:0])
	return m.buf
}

// boxedTokens hold the built-in tokens already converted to driver.Value,
// so redacting a string cell does not allocate.
var boxedTokens = [...]driver.Value{
	"[masked:email]", "[masked:phone]", "[masked:ssn]", "[masked:card]", "[masked:iban]",
	"[masked:birth_date]", "[masked:secret]", "[masked:address]", "[masked:name]", "[masked:ip_address]",
}

func boxedToken(class Class) driver.Value {
	switch class {
	case Email:
		return boxedTokens[0]
	case Phone:
		return boxedTokens[1]
	case SSN:
		return boxedTokens[2]
	case Card:
		return boxedTokens[3]
	case IBAN:
		return boxedTokens[4]
	case BirthDate:
		return boxedTokens[5]
	case Secret:
		return boxedTokens[6]
	case Address:
		return boxedTokens[7]
	case Name:
		return boxedTokens[8]
	case IPAddress:
		return boxedTokens[9]
	}
	return nil
}

// redactToken is the fixed replacement of a class; built-in classes do not allocate.
func redactToken(class Class) string {
	switch class {
	case Email:
		return "[masked:email]"
	case Phone:
		return "[masked:phone]"
	case SSN:
		return "[masked:ssn]"
	case Card:
		return "[masked:card]"
	case IBAN:
		return "[masked:iban]"
	case BirthDate:
		return "[masked:birth_date]"
	case Secret:
		return "[masked:secret]"
	case Address:
		return "[masked:address]"
	case Name:
		return "[masked:name]"
	case IPAddress:
		return "[masked:ip_address]"
	}
	return "[masked:" + string(class) + "]"
}

// value masks one cell. It never mutates v; ok is false when the value was
// left as it was (NULL, a boolean, or the clear strategy).
func (m *masker) value(st *strategy, class Class, sh shape, v driver.Value) (driver.Value, bool) {
	if v == nil || st.kind == sClear {
		return v, false
	}
	switch st.kind {
	case sNull:
		return nil, true
	case sCustom:
		return st.fn(class, v), true
	}
	switch x := v.(type) {
	case bool:
		// A boolean cannot carry a name, number or secret.
		return v, false
	case int64:
		return m.int(st.kind, class, x), true
	case float64:
		switch st.kind {
		case sHash:
			return float64(binary.BigEndian.Uint32(m.sum(class, strconv.FormatFloat(x, 'g', -1, 64))) >> 1), true
		}
		return float64(0), true
	case time.Time:
		return m.time(st.kind, class, x), true
	case string:
		out := m.text(st.kind, class, sh, x)
		if b := boxedToken(class); b != nil && out == b.(string) {
			return b, true // no allocation for the common case
		}
		return out, true
	case []byte:
		return []byte(m.text(st.kind, class, sh, string(x))), true
	}
	return redactToken(class), true
}

func (m *masker) int(k stratKind, class Class, n int64) int64 {
	switch k {
	case sPartial:
		if (n >= 100_000_000 || n <= -100_000_000) && class != Secret {
			return n % 10000
		}
		return 0
	case sHash:
		h := binary.BigEndian.Uint64(m.sum(class, strconv.FormatInt(n, 10)))
		if n >= -1<<31 && n < 1<<31 {
			// keep values that fit an int32 fitting one, for callers scanning into int32
			return int64(h % (1 << 31))
		}
		return int64(h >> 1)
	}
	return 0
}

var epoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

func (m *masker) time(k stratKind, class Class, t time.Time) time.Time {
	loc := t.Location()
	switch k {
	case sPartial:
		if class == Secret {
			break
		}
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, loc)
	case sHash:
		h := binary.BigEndian.Uint32(m.sum(class, t.UTC().Format(time.RFC3339Nano)))
		return time.Date(1900, 1, 1, 0, 0, 0, 0, loc).AddDate(0, 0, int(h%73000))
	}
	return time.Date(1970, 1, 1, 0, 0, 0, 0, loc)
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"}

func isInteger(s string) bool {
	if s == "" || len(s) > 30 {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// text masks a string cell, keeping its shape where a caller may scan it
// into a number or parse it as a time.
func (m *masker) text(k stratKind, class Class, sh shape, s string) string {
	if (sh == shapeNumber || sh == shapeUnknown) && isInteger(s) {
		return m.digits(k, class, s)
	}
	if sh == shapeNumber {
		if k == sHash {
			return strconv.FormatUint(uint64(binary.BigEndian.Uint32(m.sum(class, s))>>1), 10)
		}
		return "0"
	}
	if (sh == shapeTime || sh == shapeUnknown || sh == shapeText) && len(s) >= 10 && isDigit(s[0]) && s[4] == '-' {
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return m.time(k, class, t).Format(l)
			}
		}
	}
	if sh == shapeJSON || (len(s) > 1 && (s[0] == '{' || s[0] == '[')) {
		if out, ok := maskJSONAll(m, k, class, s); ok {
			return out
		}
	}
	return m.span(k, class, s)
}

// span masks a text value or a span found inside a text.
func (m *masker) span(k stratKind, class Class, s string) string {
	switch k {
	case sPartial:
		return partialText(class, s)
	case sHash:
		sum := m.sum(class, s)
		if class == Email {
			return "tok_" + hex.EncodeToString(sum[:6]) + "@masked.invalid"
		}
		return "tok_" + hex.EncodeToString(sum[:10])
	}
	return redactToken(class)
}

// digits masks an integer written as text with digits of the same length,
// so a caller scanning it into an int64 still can.
func (m *masker) digits(k stratKind, class Class, s string) string {
	neg := s[0] == '-'
	d := s
	if neg {
		d = s[1:]
	}
	out := make([]byte, len(d))
	switch k {
	case sHash:
		sum := m.sum(class, s)
		for i := range out {
			out[i] = '0' + sum[i%len(sum)]%10
		}
	case sPartial:
		for i := range out {
			out[i] = '0'
		}
		if len(d) >= 9 && class != Secret {
			copy(out[len(d)-4:], d[len(d)-4:])
		}
	default:
		for i := range out {
			out[i] = '0'
		}
	}
	if neg && k == sHash {
		return "-" + string(out)
	}
	return string(out)
}

// partialText keeps what identifies nothing alone, and never returns the
// original: a value too short to hide enough of is hidden entirely.
func partialText(class Class, s string) string {
	switch class {
	case Secret:
		return redactToken(class)
	case Email:
		if at := strings.LastIndexByte(s, '@'); at > 0 && at < len(s)-1 {
			return "****" + s[at:]
		}
	case Name:
		var b strings.Builder
		for i, w := range strings.Fields(s) {
			if i > 0 {
				b.WriteByte(' ')
			}
			r := []rune(w)
			if len(r) >= 3 {
				b.WriteRune(r[0])
			}
			b.WriteString("***")
		}
		if b.Len() > 0 {
			return b.String()
		}
	}
	return keepLast4(s)
}

// keepLast4 stars every letter and digit but the last four, and those too
// when fewer than five would be hidden; punctuation and spaces stay.
func keepLast4(s string) string {
	n := 0
	for _, r := range s {
		if r >= 0x80 || isAlnum(byte(r)) {
			n++
		}
	}
	keep := 0
	if n >= 9 {
		keep = 4
	}
	var b bytes.Buffer
	b.Grow(len(s))
	seen := 0
	for _, r := range s {
		if r < 0x80 && !isAlnum(byte(r)) {
			b.WriteRune(r)
			continue
		}
		seen++
		if seen > n-keep {
			b.WriteRune(r)
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}

package mask

import (
	"encoding/json"
	"strconv"
	"strings"
)

// maxJSONDepth bounds nesting so a hostile document cannot exhaust the stack.
const maxJSONDepth = 64

// jsonWalker rewrites a JSON document span by span, copying untouched bytes,
// so key order and formatting survive masking.
type jsonWalker struct {
	s    string
	out  []byte
	last int // s[:last] is already in out
	m    *masker

	// scan mode: keys are classified and string values searched by the detectors
	keyClass    func(key string) Class
	strategyFor func(Class) *strategy
	region      string
	onMask      func(Class)
}

func (w *jsonWalker) replace(start, end int, with string) {
	w.out = append(w.out, w.s[w.last:start]...)
	w.out = append(w.out, with...)
	w.last = end
}

func (w *jsonWalker) result() string {
	if w.out == nil {
		return w.s
	}
	w.out = append(w.out, w.s[w.last:]...)
	return string(w.out)
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string
// starting at s[i] == '"', and whether it holds escapes.
func stringEnd(s string, i int) (int, bool, bool) {
	esc := false
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc, true
		default:
			if s[j] < 0x20 {
				return 0, false, false
			}
		}
	}
	return 0, false, false
}

func decodeString(lit string, esc bool) (string, bool) {
	if !esc {
		return lit[1 : len(lit)-1], true
	}
	var v string
	if json.Unmarshal([]byte(lit), &v) != nil {
		return "", false
	}
	return v, true
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// value walks the JSON value at i. forced, when not nil, masks every leaf
// with that strategy and class.
func (w *jsonWalker) value(i, depth int, forced *strategy, class Class) (int, bool) {
	if depth > maxJSONDepth {
		return 0, false
	}
	i = skipWS(w.s, i)
	if i >= len(w.s) {
		return 0, false
	}
	switch c := w.s[i]; {
	case c == '{':
		i = skipWS(w.s, i+1)
		if i < len(w.s) && w.s[i] == '}' {
			return i + 1, true
		}
		for {
			i = skipWS(w.s, i)
			if i >= len(w.s) || w.s[i] != '"' {
				return 0, false
			}
			ke, esc, ok := stringEnd(w.s, i)
			if !ok {
				return 0, false
			}
			key, ok := decodeString(w.s[i:ke], esc)
			if !ok {
				return 0, false
			}
			i = skipWS(w.s, ke)
			if i >= len(w.s) || w.s[i] != ':' {
				return 0, false
			}
			f, fc := forced, class
			if f == nil && w.keyClass != nil {
				if kc := w.keyClass(key); kc != "" {
					if st := w.strategyFor(kc); st.kind != sClear {
						f, fc = st, kc
					}
				}
			}
			if i, ok = w.value(i+1, depth+1, f, fc); !ok {
				return 0, false
			}
			i = skipWS(w.s, i)
			if i < len(w.s) && w.s[i] == ',' {
				i++
				continue
			}
			if i < len(w.s) && w.s[i] == '}' {
				return i + 1, true
			}
			return 0, false
		}
	case c == '[':
		i = skipWS(w.s, i+1)
		if i < len(w.s) && w.s[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = w.value(i, depth+1, forced, class); !ok {
				return 0, false
			}
			i = skipWS(w.s, i)
			if i < len(w.s) && w.s[i] == ',' {
				i++
				continue
			}
			if i < len(w.s) && w.s[i] == ']' {
				return i + 1, true
			}
			return 0, false
		}
	case c == '"':
		end, esc, ok := stringEnd(w.s, i)
		if !ok {
			return 0, false
		}
		v, ok := decodeString(w.s[i:end], esc)
		if !ok {
			return 0, false
		}
		if forced != nil {
			w.replace(i, end, w.leaf(forced, class, v))
			if w.onMask != nil {
				w.onMask(class)
			}
			return end, true
		}
		if w.strategyFor != nil {
			if found := findAll(nil, v, w.region); len(found) > 0 {
				w.replace(i, end, quote(maskSpans(w.m, v, found, w.strategyFor, w.onMask)))
			}
		}
		return end, true
	case c == '-' || isDigit(c):
		j := i + 1
		for j < len(w.s) && (isDigit(w.s[j]) || strings.IndexByte(".eE+-", w.s[j]) >= 0) {
			j++
		}
		if forced != nil {
			num := w.s[i:j]
			switch forced.kind {
			case sNull:
				w.replace(i, j, "null")
			case sCustom:
				w.replace(i, j, w.leaf(forced, class, num))
			default:
				if isInteger(num) {
					w.replace(i, j, jsonInt(w.m.digits(forced.kind, class, num)))
				} else {
					w.replace(i, j, "0")
				}
			}
			if w.onMask != nil {
				w.onMask(class)
			}
		}
		return j, true
	case strings.HasPrefix(w.s[i:], "true"):
		return i + 4, true
	case strings.HasPrefix(w.s[i:], "false"):
		return i + 5, true
	case strings.HasPrefix(w.s[i:], "null"):
		return i + 4, true
	}
	return 0, false
}

// jsonInt writes masked digits as a valid JSON number (no leading zeros).
func jsonInt(d string) string {
	n, err := strconv.ParseInt(d, 10, 64)
	if err != nil {
		return "0"
	}
	return strconv.FormatInt(n, 10)
}

// leaf masks one string leaf of a forced subtree, as JSON text.
func (w *jsonWalker) leaf(st *strategy, class Class, v string) string {
	switch st.kind {
	case sNull:
		return "null"
	case sCustom:
		out := st.fn(class, strings.Clone(v))
		if s, ok := out.(string); ok {
			return quote(s)
		}
		return quote(redactToken(class))
	}
	return quote(w.m.text(st.kind, class, shapeText, v))
}

// walk masks s as a JSON document; ok is false when s is not JSON.
func (w *jsonWalker) walk(forced *strategy, class Class) (string, bool) {
	end, ok := w.value(0, 0, forced, class)
	if !ok || skipWS(w.s, end) != len(w.s) {
		return "", false
	}
	return w.result(), true
}

// maskJSONAll masks every leaf of the JSON document s, keeping its structure
// so a caller decoding it into a struct still can.
func maskJSONAll(m *masker, k stratKind, class Class, s string) (string, bool) {
	w := jsonWalker{s: s, m: m}
	return w.walk(&strategy{kind: k}, class)
}

// maskSpans rewrites the findings in s with the strategy of their class.
func maskSpans(m *masker, s string, found []Finding, strategyFor func(Class) *strategy, onMask func(Class)) string {
	var b strings.Builder
	last := 0
	for _, f := range found {
		st := strategyFor(f.Class)
		if st.kind == sClear {
			continue
		}
		b.WriteString(s[last:f.Start])
		b.WriteString(m.spanValue(st, f.Class, s[f.Start:f.End]))
		last = f.End
		if onMask != nil {
			onMask(f.Class)
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// spanValue masks a span inside a text; null and custom strategies that do
// not return a string fall back to the redaction token, since a span cannot
// be NULL.
func (m *masker) spanValue(st *strategy, class Class, s string) string {
	switch st.kind {
	case sNull:
		return redactToken(class)
	case sCustom:
		if out, ok := st.fn(class, strings.Clone(s)).(string); ok {
			return out
		}
		return redactToken(class)
	}
	return m.span(st.kind, class, s)
}

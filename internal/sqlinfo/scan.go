package sqlinfo

// The folding scanner turns a query string into the cache key: the text with
// the content of every literal and placeholder replaced by a marker. It must
// tokenize exactly as the dialect's own lexer does (strings, escapes, dollar
// quotes, comments), because two strings that fold to the same key share their
// cached facts. Everything outside literals is kept byte for byte, so only
// statements that differ in literal values can ever share a key; facts that do
// depend on a literal's value are marked by the analyzer and never shared.
//
// The key never contains a marker sequence that ordinary text could produce:
// a NUL byte in the text is written as NUL '0', and markers are NUL followed by
// 's' (string), 'n' or 'f' (number, by lexical class) or 'p' (numbered
// placeholder).

const (
	markString = 's'
	markNumber = 'n' // an integer that fits int32 (the lexers' ICONST)
	markFloat  = 'f' // any other number: the grammar treats it differently
	markParam  = 'p'
)

// maxCommentDepth bounds PostgreSQL comment nesting; deeper text is Unknown.
const maxCommentDepth = 64

// span is one statement's byte range in the query.
type span struct{ start, end int }

// scratch is reusable memory for one scan, pooled by the Analyzer so the
// cache-hit path allocates nothing.
type scratch struct {
	key   []byte
	spans []span
}

// scanResult is what a scan learned beyond the key.
type scanResult struct {
	// hazard, when not empty, names a construct where the parser library and
	// the server are known to read the text differently; the statement is then
	// reported Unknown rather than analyzed.
	hazard string
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentCont(d Dialect, c byte) bool {
	return isIdentStart(c) || isDigit(c) || (c == '$' && d != MySQL)
}

// fold scans q in dialect d, appends the key to s.key (after a dialect byte)
// and records the statement spans (ranges between top-level semicolons that
// contain at least one token) in s.spans.
func fold(d Dialect, q string, s *scratch) scanResult {
	if d == SQLite {
		return foldSQLite(q, s, nil)
	}
	var res scanResult
	key := s.key[:0]
	spans := s.spans[:0]
	if d == MySQL {
		key = append(key, 'm', 0)
	} else {
		key = append(key, 'p', 0)
	}
	stmtStart, hasToken := 0, false
	n := len(q)
	i := 0
	// raw copies q[from:to] to the key, escaping NUL bytes.
	raw := func(from, to int) {
		for j := from; j < to; j++ {
			if q[j] == 0 {
				key = append(key, 0, '0')
			} else {
				key = append(key, q[j])
			}
		}
	}
	for i < n {
		c := q[i]
		switch {
		case isSpace(c):
			j := i + 1
			for j < n && isSpace(q[j]) {
				j++
			}
			key = append(key, q[i:j]...)
			i = j
			continue
		case c == ';':
			if hasToken {
				spans = append(spans, span{stmtStart, i})
			}
			stmtStart, hasToken = i+1, false
			key = append(key, c)
			i++
			continue
		case c == '-' && i+1 < n && q[i+1] == '-':
			if d == MySQL && (i+2 >= n || !(q[i+2] <= ' ')) {
				// MySQL needs whitespace or a control character after "--";
				// the parser library takes "--x" as a comment anyway.
				if res.hazard == "" {
					res.hazard = `"--" not followed by a space`
				}
			}
			j := i + 2
			for j < n && q[j] != '\n' && q[j] != '\r' {
				j++
			}
			raw(i, j)
			i = j
			continue
		case c == '#' && d == MySQL:
			j := i + 1
			for j < n && q[j] != '\n' && q[j] != '\r' {
				j++
			}
			raw(i, j)
			i = j
			continue
		case c == '/' && i+1 < n && q[i+1] == '/' && d == MySQL:
			// The parser library reads "//" as a comment; MySQL does not.
			if res.hazard == "" {
				res.hazard = `"//" read as a comment by the parser but not by MySQL`
			}
			key = append(key, c)
			i++
			continue
		case c == '/' && i+1 < n && q[i+1] == '*':
			if d == MySQL {
				if i+2 < n && q[i+2] == '!' {
					// Executable comment: the server runs its content, the
					// parser library parses it; scan it as code.
					j := i + 3
					key = append(key, q[i:j]...)
					i = j
					hasToken = true
					continue
				}
				if i+3 < n && (q[i+2] == 'M' || q[i+2] == 'm') && q[i+3] == '!' {
					if res.hazard == "" {
						res.hazard = "MariaDB executable comment /*M! is not understood by the parser"
					}
				}
				end := indexFrom(q, "*/", i+2)
				if end < 0 {
					raw(i, n)
					return finish(s, key, spans, res, hasToken, stmtStart, n)
				}
				raw(i, end+2)
				i = end + 2
				continue
			}
			// PostgreSQL comments nest.
			depth, j := 1, i+2
			for j < n && depth > 0 {
				if q[j] == '/' && j+1 < n && q[j+1] == '*' {
					depth++
					if depth > maxCommentDepth && res.hazard == "" {
						// The parser's lexer slows quadratically with depth.
						res.hazard = "comments nested too deeply"
					}
					j += 2
				} else if q[j] == '*' && j+1 < n && q[j+1] == '/' {
					depth--
					j += 2
				} else {
					j++
				}
			}
			raw(i, j)
			i = j
			continue
		case c == '*' && d == MySQL && i+1 < n && q[i+1] == '/':
			// End of an executable comment's content.
			key = append(key, '*', '/')
			i += 2
			continue
		}
		hasToken = true
		switch {
		case c == '\'' || (c == '"' && d == MySQL):
			end, ok := scanQuoted(d, q, i, c, d == MySQL)
			if !ok {
				raw(i, n)
				return finish(s, key, spans, res, hasToken, stmtStart, n)
			}
			key = append(key, 0, markString)
			i = end
		case c == '"' || c == '`' && d == MySQL:
			end, ok := scanQuoted(d, q, i, c, false)
			if !ok {
				raw(i, n)
				return finish(s, key, spans, res, hasToken, stmtStart, n)
			}
			raw(i, end)
			i = end
		case c == '$' && d == Postgres && i+1 < n && isDigit(q[i+1]):
			j := i + 1
			for j < n && isDigit(q[j]) {
				j++
			}
			if (j < n && isIdentCont(d, q[j])) || j-i > 9 {
				// "$1abc" and a number past int32 are lexer errors: keep
				// them as written.
				raw(i, j)
				i = j
				continue
			}
			key = append(key, 0, markParam)
			i = j
		case c == '$' && d == Postgres:
			// Dollar quote $tag$...$tag$; a lone "$" is left to the parser.
			j := i + 1
			for j < n && (isIdentStart(q[j]) || (j > i+1 && isDigit(q[j]))) {
				j++
			}
			if j < n && q[j] == '$' {
				tag := q[i : j+1]
				end := indexFrom(q, tag, j+1)
				if end < 0 {
					raw(i, n)
					return finish(s, key, spans, res, hasToken, stmtStart, n)
				}
				key = append(key, 0, markString)
				i = end + len(tag)
			} else {
				key = append(key, c)
				i++
			}
		case isDigit(c) || (c == '.' && i+1 < n && isDigit(q[i+1])):
			j := scanNumber(d, q, i)
			if j < n && (isIdentCont(d, q[j]) || (q[j] == '.' && d == Postgres && j+1 < n && q[j+1] != '.')) {
				// A number run into a name ("1abc", "0b2", "1e"): PostgreSQL
				// rejects it, MySQL reads it as an identifier where the parser
				// library sees a number and a name. Never folded.
				if d == MySQL && res.hazard == "" {
					res.hazard = "identifier starting with a digit"
				}
				k := j
				for k < n && (isIdentCont(d, q[k]) || q[k] == '.') {
					k++
				}
				raw(i, k)
				i = k
				continue
			}
			key = append(key, 0, numberClass(q[i:j]))
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < n && isIdentCont(d, q[j]) {
				j++
			}
			word := q[i:j]
			if j < n && q[j] == '\'' && len(word) <= 2 {
				switch word {
				case "e", "E":
					end, ok := scanQuoted(d, q, j, '\'', true)
					if !ok {
						raw(i, n)
						return finish(s, key, spans, res, hasToken, stmtStart, n)
					}
					if indexFrom(q[:end], "\\", j) >= 0 {
						// An escape can be invalid ("\u12", "\xff") and
						// fail the lexer: such text is never folded.
						raw(i, end)
						i = end
						continue
					}
					key = append(key, word...)
					key = append(key, 0, markString)
					i = end
					continue
				case "b", "B", "x", "X":
					// Bit and hex strings can be invalid by content (an odd
					// number of hex digits): kept as written.
					end := j + 1
					for end < n && q[end] != '\'' {
						end++
					}
					if end < n {
						end++
					}
					raw(i, end)
					i = end
					continue
				case "n", "N":
					end, ok := scanQuoted(d, q, j, '\'', d == MySQL)
					if !ok {
						raw(i, n)
						return finish(s, key, spans, res, hasToken, stmtStart, n)
					}
					key = append(key, word...)
					key = append(key, 0, markString)
					i = end
					continue
				}
			}
			if d == Postgres && (word == "u" || word == "U") && j+1 < n && q[j] == '&' && (q[j+1] == '\'' || q[j+1] == '"') {
				end, ok := scanQuoted(d, q, j+1, q[j+1], false)
				if !ok {
					raw(i, n)
					return finish(s, key, spans, res, hasToken, stmtStart, n)
				}
				// Unicode escapes can be invalid and fail the lexer: kept
				// as written.
				raw(i, end)
				i = end
				continue
			}
			key = append(key, word...) // identifier bytes are never NUL
			i = j
		default:
			raw(i, i+1)
			i++
		}
	}
	return finish(s, key, spans, res, hasToken, stmtStart, n)
}

func finish(s *scratch, key []byte, spans []span, res scanResult, hasToken bool, start, n int) scanResult {
	if hasToken {
		spans = append(spans, span{start, n})
	}
	s.key, s.spans = key, spans
	return res
}

// scanQuoted returns the index just past the quoted token starting at q[i]
// (the opening delimiter), honouring doubled delimiters and, when backslash is
// true, backslash escapes. ok is false for an unterminated token.
func scanQuoted(_ Dialect, q string, i int, delim byte, backslash bool) (int, bool) {
	j := i + 1
	for j < len(q) {
		c := q[j]
		if backslash && c == '\\' {
			j += 2
			continue
		}
		if c == delim {
			if j+1 < len(q) && q[j+1] == delim {
				j += 2
				continue
			}
			return j + 1, true
		}
		j++
	}
	return len(q), false
}

// scanNumber returns the index just past the numeric literal at q[i], as the
// dialect's lexer reads it: decimal digits (in PostgreSQL with single
// underscores between them), a fraction, an exponent, or a 0x/0b (and in
// PostgreSQL 0o) integer.
func scanNumber(d Dialect, q string, i int) int {
	n := len(q)
	digits := func(j int, ok func(byte) bool) int {
		// (_?digit)* starting at j
		for j < n {
			if ok(q[j]) {
				j++
			} else if d == Postgres && q[j] == '_' && j+1 < n && ok(q[j+1]) {
				j += 2
			} else {
				break
			}
		}
		return j
	}
	if q[i] == '0' && i+2 < n {
		var ok func(byte) bool
		// MySQL knows only a lower-case 0x here (0X1 and 0b1 read
		// differently in the server and the parser: left unfolded, they
		// raise the digit-identifier hazard).
		switch q[i+1] {
		case 'x', 'X':
			if d == Postgres || q[i+1] == 'x' {
				ok = func(c byte) bool { return isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'f' }
			}
		case 'o', 'O':
			if d == Postgres {
				ok = func(c byte) bool { return c >= '0' && c <= '7' }
			}
		case 'b', 'B':
			if d == Postgres {
				ok = func(c byte) bool { return c == '0' || c == '1' }
			}
		}
		if ok != nil {
			j := i + 2
			if d == Postgres && q[j] == '_' && j+1 < n {
				j++
			}
			if ok(q[j]) {
				return digits(j, ok)
			}
		}
	}
	j := digits(i, isDigit)
	if j < n && q[j] == '.' && !(j+1 < n && q[j+1] == '.') {
		j = digits(j+1, isDigit)
	}
	if j < n && (q[j] == 'e' || q[j] == 'E') {
		k := j + 1
		if k < n && (q[k] == '+' || q[k] == '-') {
			k++
		}
		if k < n && isDigit(q[k]) {
			j = digits(k, isDigit)
		}
	}
	return j
}

func indexFrom(s, sub string, from int) int {
	if from > len(s) {
		return -1
	}
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i] == sub[0] && s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// readableFingerprint renders a key for people: markers become "?".
func readableFingerprint(key []byte) string {
	out := make([]byte, 0, len(key))
	for i := 2; i < len(key); i++ {
		if key[i] == 0 && i+1 < len(key) {
			if key[i+1] == '0' {
				out = append(out, 0)
			} else {
				out = append(out, '?')
			}
			i++
			continue
		}
		out = append(out, key[i])
	}
	return string(out)
}

// trimStatement trims whitespace and trailing semicolons from a statement's text.
func trimStatement(s string) string {
	for {
		i, j := 0, len(s)
		for i < j && isSpace(s[i]) {
			i++
		}
		for j > i && (isSpace(s[j-1]) || s[j-1] == ';') {
			j--
		}
		if i == 0 && j == len(s) {
			return s
		}
		s = s[i:j]
	}
}

// numberClass tells an integer that fits int32 from every other number: the
// grammar accepts them in different places (FETCH 1 but not FETCH 1e20), so
// they must never share a key.
func numberClass(lit string) byte {
	base, digits := uint64(10), lit
	if len(lit) > 2 && lit[0] == '0' {
		switch lit[1] | 0x20 {
		case 'x':
			base, digits = 16, lit[2:]
		case 'o':
			base, digits = 8, lit[2:]
		case 'b':
			base, digits = 2, lit[2:]
		}
	}
	var v uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var x uint64
		switch {
		case c == '_':
			continue
		case isDigit(c):
			x = uint64(c - '0')
		case base == 16 && (c|0x20) >= 'a' && (c|0x20) <= 'f':
			x = uint64(c|0x20-'a') + 10
		default:
			return markFloat // a fraction or an exponent
		}
		v = v*base + x
		if v > 1<<31-1 {
			return markFloat
		}
	}
	return markNumber
}

package sqlinfo

import "strconv"

// SQLite text is analyzed with the PostgreSQL grammar (no maintained Go
// SQLite grammar with an AST was found). foldSQLite tokenizes as SQLite does,
// so statement boundaries, comments and strings are SQLite's; where the
// PostgreSQL parser would read the same bytes differently (a "/*" inside a
// comment, which PostgreSQL nests; an E'' string, which has backslash
// escapes in PostgreSQL only; a lone "$") the text is Unknown. For the parse,
// SQLite's parameters (?, ?NNN, :name, @name, $name) become $n and quoted
// names in `...` or [...] become "...".

// foldSQLite is fold for SQLite. When parse is not nil, the text to hand the
// PostgreSQL parser is appended to it.
func foldSQLite(q string, s *scratch, parse *[]byte) scanResult {
	var res scanResult
	key := append(s.key[:0], 's', 0)
	spans := s.spans[:0]
	stmtStart, hasToken := 0, false
	n := len(q)
	param := 0
	hazard := func(h string) {
		if res.hazard == "" {
			res.hazard = h
		}
	}
	// emit copies q[from:to] to the key (escaping NUL) and to the parse text.
	emit := func(from, to int) {
		for j := from; j < to; j++ {
			if q[j] == 0 {
				key = append(key, 0, '0')
			} else {
				key = append(key, q[j])
			}
		}
		if parse != nil {
			*parse = append(*parse, q[from:to]...)
		}
	}
	i := 0
	for i < n {
		c := q[i]
		switch {
		case isSpace(c):
			emit(i, i+1)
			i++
			continue
		case c == ';':
			if hasToken {
				spans = append(spans, span{stmtStart, i})
			}
			stmtStart, hasToken = i+1, false
			emit(i, i+1)
			i++
			continue
		case c == '-' && i+1 < n && q[i+1] == '-':
			j := i + 2
			for j < n && q[j] != '\n' {
				j++
			}
			emit(i, j)
			i = j
			continue
		case c == '/' && i+1 < n && q[i+1] == '*':
			end := indexFrom(q, "*/", i+2)
			if end < 0 {
				end = n - 2 // SQLite ends an open comment at the end of input
				hazard("unterminated comment")
			}
			if indexFrom(q[:end], "/*", i+2) >= 0 {
				hazard(`"/*" inside a comment (PostgreSQL would nest it)`)
			}
			emit(i, end+2)
			i = end + 2
			continue
		}
		hasToken = true
		switch {
		case c == '\'':
			end, ok := scanQuoted(SQLite, q, i, '\'', false)
			if !ok {
				emit(i, n)
				return finishSQLite(s, key, spans, res, hasToken, stmtStart, n)
			}
			key = append(key, 0, markString)
			if parse != nil {
				*parse = append(*parse, q[i:end]...)
			}
			i = end
		case c == '"':
			end, ok := scanQuoted(SQLite, q, i, '"', false)
			if !ok {
				emit(i, n)
				return finishSQLite(s, key, spans, res, hasToken, stmtStart, n)
			}
			emit(i, end)
			i = end
		case c == '`' || c == '[':
			closer := byte('`')
			if c == '[' {
				closer = ']'
			}
			end := i + 1
			for end < n && q[end] != closer {
				end++
			}
			if end >= n || (c == '`' && end+1 < n && q[end+1] == '`') || indexFrom(q[:end], `"`, i) >= 0 {
				hazard("quoted name the PostgreSQL grammar cannot take")
				emit(i, min(end+1, n))
				i = min(end+1, n)
				continue
			}
			emit(i, end+1)
			if parse != nil {
				p := *parse
				p[len(p)-(end+1-i)] = '"'
				p[len(p)-1] = '"'
			}
			i = end + 1
		case c == '?' || ((c == ':' || c == '@' || c == '$') && i+1 < n && isIdentCont(SQLite, q[i+1])):
			j := i + 1
			if c == '?' {
				for j < n && isDigit(q[j]) {
					j++
				}
			} else {
				for j < n && isIdentCont(SQLite, q[j]) {
					j++
				}
			}
			key = append(key, 0, markParam)
			param++
			if parse != nil {
				*parse = append(*parse, '$')
				*parse = strconv.AppendInt(*parse, int64(param), 10)
				*parse = append(*parse, ' ')
			}
			i = j
		case c == '$':
			hazard(`"$" without a name (PostgreSQL would read a dollar quote)`)
			emit(i, i+1)
			i++
		case isDigit(c) || (c == '.' && i+1 < n && isDigit(q[i+1])):
			j := scanNumber(Postgres, q, i)
			if j < n && (isIdentCont(SQLite, q[j]) || q[j] == '.') {
				k := j
				for k < n && (isIdentCont(SQLite, q[k]) || q[k] == '.') {
					k++
				}
				emit(i, k)
				i = k
				continue
			}
			key = append(key, 0, numberClass(q[i:j]))
			if parse != nil {
				*parse = append(*parse, q[i:j]...)
			}
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < n && isIdentCont(SQLite, q[j]) {
				j++
			}
			if j < n && q[j] == '\'' && (j-i == 1 && (c|0x20) == 'e') {
				hazard("E'' string (backslash escapes in PostgreSQL only)")
			}
			if j < n && q[j] == '\'' && j-i == 1 && (c|0x20) == 'x' {
				// A blob literal: kept as written (its content can be invalid).
				end, ok := scanQuoted(SQLite, q, j, '\'', false)
				if !ok {
					emit(i, n)
					return finishSQLite(s, key, spans, res, hasToken, stmtStart, n)
				}
				emit(i, end)
				i = end
				continue
			}
			emit(i, j)
			i = j
		default:
			emit(i, i+1)
			i++
		}
	}
	return finishSQLite(s, key, spans, res, hasToken, stmtStart, n)
}

func finishSQLite(s *scratch, key []byte, spans []span, res scanResult, hasToken bool, start, n int) scanResult {
	return finish(s, key, spans, res, hasToken, start, n)
}

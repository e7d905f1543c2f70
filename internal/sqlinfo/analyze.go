package sqlinfo

import (
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultCacheSize is the number of statement shapes the package-level
// Analyze remembers.
const DefaultCacheSize = 4096

// MaxCachedQueryLen is the longest query string kept in the cache; longer
// ones are analyzed on every call.
const MaxCachedQueryLen = 64 << 10

// Analyzer analyzes query strings and caches the result per statement shape.
// It is safe for concurrent use.
type Analyzer struct {
	// exact maps a string to its analysis: the hit path for a statement
	// run again with the same text.
	exact *lru.Cache[exactKey, *Analysis]
	// shapes maps a folded key (literals and placeholders replaced) to the
	// analysis of the first string seen with that shape. Analyses whose
	// facts depend on a literal's value (a trivially true WHERE, a constant
	// LIMIT, an unreadable statement's error message) are never put here:
	// they are shared only by byte-identical strings, through exact.
	shapes *lru.Cache[string, *shapeEntry]
	pool   sync.Pool
	// parses counts cache misses, for tests.
	parses atomic.Int64
}

type shapeEntry struct {
	a      *Analysis
	nstmts int
}

type exactKey struct {
	d Dialect
	q string
}

// NewAnalyzer returns an Analyzer caching up to size statement shapes and
// size exact strings. size <= 0 means DefaultCacheSize.
func NewAnalyzer(size int) *Analyzer {
	if size <= 0 {
		size = DefaultCacheSize
	}
	shapes, _ := lru.New[string, *shapeEntry](size)
	exact, _ := lru.New[exactKey, *Analysis](size)
	return &Analyzer{
		shapes: shapes,
		exact:  exact,
		pool:   sync.Pool{New: func() any { return &scratch{key: make([]byte, 0, 256), spans: make([]span, 0, 4)} }},
	}
}

var defaultAnalyzer = NewAnalyzer(DefaultCacheSize)

// Analyze returns the facts about query read in dialect d, from a
// process-wide cache of DefaultCacheSize statement shapes.
//
// The returned *Analysis may be shared with other callers: treat it, and
// every slice in it, as read-only.
func Analyze(d Dialect, query string) *Analysis {
	return defaultAnalyzer.Analyze(d, query)
}

// Analyze returns the facts about query read in dialect d. A dialect other
// than Postgres, MySQL and SQLite yields an Unknown statement.
//
// The returned *Analysis may be shared with other callers: treat it, and
// every slice in it, as read-only. Statement.Text always holds this query's
// own text.
func (z *Analyzer) Analyze(d Dialect, query string) *Analysis {
	if d != Postgres && d != MySQL && d != SQLite {
		return &Analysis{Dialect: d, Fingerprint: query, Statements: []Statement{unknownStatement(trimStatement(query), "unsupported dialect "+string(d))}}
	}
	// A byte-identical string (a parameterized statement run again) is
	// found without scanning it.
	if a, ok := z.exact.Get(exactKey{d, query}); ok {
		return a
	}
	s := z.pool.Get().(*scratch)
	defer z.pool.Put(s)
	res := fold(d, query, s)
	// The lookup key aliases the scratch buffer; it is copied before it is
	// stored (lru does not keep the key of a Get).
	key := unsafe.String(unsafe.SliceData(s.key), len(s.key))
	// Invalid UTF-8 inside a literal is rejected by the PostgreSQL parser,
	// and a NUL byte ends its input: such a string must not take the facts
	// of its shape.
	valid := utf8.ValidString(query) && strings.IndexByte(query, 0) < 0
	if valid {
		if e, ok := z.shapes.Get(key); ok && len(s.spans) == e.nstmts {
			return rebase(e.a, query, s.spans)
		}
	}
	z.parses.Add(1)
	a, sensitive := analyze(d, query, s.spans, res)
	sensitive = sensitive || !valid
	a.Fingerprint = readableFingerprint(s.key)
	if len(query) > MaxCachedQueryLen {
		// The cache is bounded by entries; huge strings would make it
		// unbounded in bytes. They are analyzed every time.
		return a
	}
	z.exact.Add(exactKey{d, query}, a)
	if !sensitive {
		// Other strings of this shape differ only in literals no fact
		// depends on: they share these facts.
		z.shapes.Add(string(s.key), &shapeEntry{a: a, nstmts: len(a.Statements)})
	}
	return a
}

// rebase returns a copy of a shape's analysis carrying query's own text.
// Only the statement texts differ between strings of one shape whose facts
// do not depend on literal values.
func rebase(a *Analysis, query string, spans []span) *Analysis {
	out := &Analysis{Dialect: a.Dialect, Fingerprint: a.Fingerprint, Statements: make([]Statement, len(a.Statements))}
	copy(out.Statements, a.Statements)
	for i := range out.Statements {
		out.Statements[i].Text = trimStatement(query[spans[i].start:spans[i].end])
	}
	return out
}

func analyze(d Dialect, query string, spans []span, res scanResult) (*Analysis, bool) {
	a := &Analysis{Dialect: d}
	var sensitive bool
	if strings.IndexByte(query, 0) >= 0 {
		// The server reads a query as a C string (PostgreSQL) or would get
		// text the parser reads differently: refuse to guess.
		a.Statements = []Statement{unknownStatement(trimStatement(query), "query contains a NUL byte")}
		return a, true
	}
	switch d {
	case Postgres:
		if res.hazard != "" {
			a.Statements, sensitive = []Statement{unknownStatement(trimStatement(query), "ambiguous text: "+res.hazard)}, true
			break
		}
		a.Statements, sensitive = analyzePostgres(query, spans)
	case MySQL:
		a.Statements, sensitive = analyzeMySQL(query, spans, res.hazard)
	case SQLite:
		if res.hazard != "" {
			a.Statements, sensitive = []Statement{unknownStatement(trimStatement(query), "ambiguous text: "+res.hazard)}, true
			break
		}
		var parse []byte
		foldSQLite(query, &scratch{}, &parse)
		a.Statements, sensitive = analyzePostgresText(string(parse), query, spans)
	}
	// The shape cache relies on every string of a shape splitting the same
	// way; when the parser and the scanner disagree, share nothing.
	if len(spans) != len(a.Statements) {
		sensitive = true
	}
	return a, sensitive
}

package sqlinfo

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// pairs of strings of one shape (they differ only in literal values) whose
// facts differ: the cache must never hand one the other's facts.
var literalPairs = []struct {
	d     Dialect
	a, b  string
	check func(*Statement) string // a fact that must differ
}{
	{Postgres, "DELETE FROM t WHERE 1=2", "DELETE FROM t WHERE 1=1", whereFact},
	{Postgres, "UPDATE t SET x = 1 WHERE 'a' = 'b'", "UPDATE t SET x = 1 WHERE 'a' = 'a'", whereFact},
	{Postgres, "DELETE FROM t WHERE id = 5 OR 1 = 0", "DELETE FROM t WHERE id = 5 OR 1 = 1", whereFact},
	{Postgres, "SELECT id FROM t LIMIT 10", "SELECT id FROM t LIMIT 100000", limitFact},
	{Postgres, "EXPLAIN (ANALYZE 0) DELETE FROM t", "EXPLAIN (ANALYZE 1) DELETE FROM t", effectFact},
	{Postgres, "EXPLAIN (ANALYZE 'off') DELETE FROM t", "EXPLAIN (ANALYZE 'on') DELETE FROM t", effectFact},
	{Postgres, "SELECT $x$a$x$; SELECT 1", "SELECT $x$a$x$; SELECT 1 WHERE", countFact},
	{Postgres, "DO LANGUAGE 'plpgsql' $$ BEGIN END $$", "DO LANGUAGE 'plpython3u' $$ BEGIN END $$", effectFact},
	{Postgres, "COPY t FROM '/etc/passwd'", "COPY t FROM ''", effectFact},
	{MySQL, "DELETE FROM t WHERE 1=2", "DELETE FROM t WHERE 1=1", whereFact},
	{MySQL, "UPDATE t SET x = 1 WHERE 0", "UPDATE t SET x = 1 WHERE 1", whereFact},
	{MySQL, "SELECT id FROM t LIMIT 10", "SELECT id FROM t LIMIT 100000", limitFact},
	{MySQL, "SELECT 1 + 1 FROM t", "SELECT 2 + 2 FROM t", func(s *Statement) string { return s.Columns[0].Name }},
}

func whereFact(s *Statement) string  { return fmt.Sprint(s.HasWhere, s.WhereAlwaysTrue) }
func limitFact(s *Statement) string  { return fmt.Sprint(s.Limit) }
func effectFact(s *Statement) string { return string(s.Effect) + fmt.Sprint(s.Dangers) }
func countFact(s *Statement) string  { return s.Text }

func TestCacheNeverSharesLiteralFacts(t *testing.T) {
	for _, p := range literalPairs {
		fresh := func(q string) string {
			return p.check(&NewAnalyzer(8).Analyze(p.d, q).Statements[0])
		}
		wantA, wantB := fresh(p.a), fresh(p.b)
		if wantA == wantB && p.a != "SELECT $x$a$x$; SELECT 1" {
			t.Fatalf("%q and %q: the pair does not differ in %s; fix the test", p.a, p.b, wantA)
		}
		for _, order := range [][2]string{{p.a, p.b}, {p.b, p.a}} {
			z := NewAnalyzer(8)
			for round := 0; round < 2; round++ {
				for _, q := range order {
					want := wantA
					if q == p.b {
						want = wantB
					}
					if got := p.check(&z.Analyze(p.d, q).Statements[0]); got != want {
						t.Errorf("%s: after %q, %q gave %s, want %s", p.d, order[0], q, got, want)
					}
				}
			}
		}
	}
}

func TestCacheParsesAShapeOnce(t *testing.T) {
	z := NewAnalyzer(8)
	for i := 0; i < 50; i++ {
		q := fmt.Sprintf("SELECT email FROM users WHERE id = %d AND name = 'user-%d'", i, i)
		a := z.Analyze(Postgres, q)
		if a.Statements[0].Text != q {
			t.Fatalf("Text = %q, want this query's own text %q", a.Statements[0].Text, q)
		}
		if got := colString(a.Statements[0].Columns); got != "email<-users.email" {
			t.Fatalf("cols = %s", got)
		}
	}
	for i := 0; i < 50; i++ {
		z.Analyze(Postgres, fmt.Sprintf("DELETE FROM sessions WHERE id = %d", i))
		z.Analyze(MySQL, fmt.Sprintf("UPDATE users SET name = 'n%d' WHERE id = %d", i, i))
		z.Analyze(Postgres, "SELECT * FROM t WHERE id = $1")
	}
	if n := z.parses.Load(); n != 4 {
		t.Errorf("parsed %d times for 4 shapes", n)
	}
	a := z.Analyze(Postgres, "DELETE FROM sessions WHERE id = 7")
	if st := a.Statements[0]; !st.HasWhere || st.WhereAlwaysTrue || st.Text != "DELETE FROM sessions WHERE id = 7" {
		t.Errorf("cached DELETE facts: %+v", st)
	}
}

func TestCacheRebaseKeepsEachStatementsText(t *testing.T) {
	z := NewAnalyzer(8)
	z.Analyze(Postgres, "SELECT 1; DELETE FROM t WHERE id = 2")
	a := z.Analyze(Postgres, "SELECT 10; DELETE FROM t WHERE id = 20")
	if len(a.Statements) != 2 || a.Statements[0].Text != "SELECT 10" || a.Statements[1].Text != "DELETE FROM t WHERE id = 20" {
		t.Fatalf("texts: %+v", a.Statements)
	}
	if z.parses.Load() != 1 {
		t.Errorf("the second string of the shape was parsed again")
	}
}

func TestDialectsDoNotShareEntries(t *testing.T) {
	z := NewAnalyzer(8)
	// Valid MySQL, invalid PostgreSQL.
	q := "SELECT * FROM t WHERE id = ?"
	if e := z.Analyze(MySQL, q).Effect(); e != Read {
		t.Fatalf("mysql: %s", e)
	}
	if e := z.Analyze(Postgres, q).Effect(); e != Unknown {
		t.Fatalf("postgres: %s", e)
	}
}

func TestUnsupportedDialect(t *testing.T) {
	a := Analyze(Dialect("oracle"), "SELECT 1 FROM dual")
	if a.Effect() != Unknown || a.Statements[0].Error == "" {
		t.Fatalf("%+v", a)
	}
}

func TestConcurrentAnalyze(t *testing.T) {
	z := NewAnalyzer(16)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				q := fmt.Sprintf("DELETE FROM t%d WHERE %d=%d", i%20, g, i%3)
				st := z.Analyze(Postgres, q).Statements[0]
				if st.WhereAlwaysTrue != (g == i%3) || st.Text != q {
					t.Errorf("%q: %+v", q, st)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestFoldKeepsNonLiteralText(t *testing.T) {
	s := &scratch{}
	key := func(d Dialect, q string) string {
		fold(d, q, s)
		return string(s.key)
	}
	same := [][2]string{
		{"SELECT 'a', 1, $1", "SELECT 'bb', 22, $9"},
		{"SELECT E'it''s' ", "SELECT E'x' "},
		{"SELECT $a$ x $a$", "SELECT $b$ y $b$"},
	}
	for _, p := range same {
		if key(Postgres, p[0]) != key(Postgres, p[1]) {
			t.Errorf("%q and %q should share a key", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"SELECT a ? b", "SELECT a 'x' b"},
		{"SELECT \"a\"", "SELECT \"b\""},
		{"SELECT U&'\\0041'", "SELECT U&'\\zzzz'"},
		{"SELECT E'\\u12'", "SELECT E'\\u1234'"},
		{"SELECT $1", "SELECT $99999999999"},
		{"SELECT X'4'", "SELECT X'41'"},
		{"FETCH 1 FROM c", "FETCH 99999999999 FROM c"},
		{"SELECT 1", "SELECT 1.0"},
		{"SELECT 1 /* a */", "SELECT 1 /* b */"},
		{"SELECT x1", "SELECT x2"},
		{"SELECT E'a\\'; DROP TABLE t; --'", "SELECT 'a\\'; DROP TABLE t; --'"},
		{"SELECT \x00s", "SELECT 'x'"},
	}
	for _, p := range differ {
		if key(Postgres, p[0]) == key(Postgres, p[1]) {
			t.Errorf("%q and %q must not share a key", p[0], p[1])
		}
	}
	if key(MySQL, "SELECT `a`") == key(MySQL, "SELECT `b`") {
		t.Errorf("backquoted identifiers were folded")
	}
	if key(MySQL, `SELECT "a"`) != key(MySQL, `SELECT "b\"c"`) {
		t.Errorf("mysql double-quoted strings were not folded")
	}
}

func TestHugeQueriesAreNotCached(t *testing.T) {
	z := NewAnalyzer(8)
	q := "SELECT 1 AS x" + strings.Repeat(" ", MaxCachedQueryLen)
	for i := 0; i < 3; i++ {
		if e := z.Analyze(Postgres, q).Effect(); e != Read {
			t.Fatalf("effect %s", e)
		}
	}
	if n := z.parses.Load(); n != 3 {
		t.Errorf("parsed %d times, want 3 (not cached)", n)
	}
	if z.exact.Len() != 0 || z.shapes.Len() != 0 {
		t.Errorf("huge string kept in the cache")
	}
}

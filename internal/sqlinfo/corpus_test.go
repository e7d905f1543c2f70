package sqlinfo

import (
	"bufio"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// corpusCase is one statement string of testdata/corpus.txt with the facts
// it must produce.
type corpusCase struct {
	line    int
	dialect Dialect
	query   string
	expect  []string // key=value facts; "@k" switches to statement k
}

// loadCorpus reads testdata/corpus.txt. Format:
//
//	pg: SELECT ...            the statement (my: MySQL, sq: SQLite)
//	 | more text              continuation line, joined with a newline
//	=> effect=read reads=a,b  expected facts (several "=>" lines allowed)
func loadCorpus(t *testing.T) []corpusCase {
	t.Helper()
	f, err := os.Open("testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []corpusCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		case strings.HasPrefix(line, "pg: "), strings.HasPrefix(line, "my: "), strings.HasPrefix(line, "sq: "):
			d := Postgres
			switch line[:2] {
			case "my":
				d = MySQL
			case "sq":
				d = SQLite
			}
			cases = append(cases, corpusCase{line: n, dialect: d, query: line[4:]})
		case strings.HasPrefix(trimmed, "| ") || trimmed == "|":
			c := &cases[len(cases)-1]
			c.query += "\n" + strings.TrimPrefix(strings.TrimPrefix(trimmed, "|"), " ")
		case strings.HasPrefix(trimmed, "=>"):
			c := &cases[len(cases)-1]
			c.expect = append(c.expect, strings.Fields(strings.TrimPrefix(trimmed, "=>"))...)
		default:
			t.Fatalf("corpus.txt:%d: cannot read %q", n, line)
		}
	}
	return cases
}

func relNames(rs []Relation) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.String())
	}
	sort.Strings(out)
	return out
}

func list(v string) []string {
	out := []string{}
	if v != "" {
		out = strings.Split(v, ",")
	}
	sort.Strings(out)
	return out
}

// colString renders output columns as name<-src+src;name<-...
func colString(cols []OutputColumn) string {
	parts := make([]string, 0, len(cols))
	for _, c := range cols {
		name := c.Name
		if c.Star {
			name = "*"
		}
		srcs := make([]string, 0, len(c.Sources))
		for _, s := range c.Sources {
			srcs = append(srcs, s.String())
		}
		sort.Strings(srcs)
		parts = append(parts, name+"<-"+strings.Join(srcs, "+"))
	}
	return strings.Join(parts, ";")
}

func TestCorpus(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < 250 {
		t.Errorf("corpus holds %d statements, want at least 250", len(cases))
	}
	z := NewAnalyzer(64)
	for _, c := range cases {
		a := z.Analyze(c.dialect, c.query)
		checkCase(t, c, a)
		// A second read comes from the cache and must say the same.
		checkCase(t, c, z.Analyze(c.dialect, c.query))
	}
}

func checkCase(t *testing.T, c corpusCase, a *Analysis) {
	t.Helper()
	k := 0
	fail := func(key, got, want string) {
		t.Errorf("corpus.txt:%d %s %q: stmt %d %s = %s, want %s", c.line, c.dialect, c.query, k, key, got, want)
	}
	for _, e := range c.expect {
		if strings.HasPrefix(e, "@") {
			k, _ = strconv.Atoi(e[1:])
			continue
		}
		key, val, _ := strings.Cut(e, "=")
		if key == "n" {
			if got := strconv.Itoa(len(a.Statements)); got != val {
				fail("n", got, val)
				return
			}
			continue
		}
		if key == "total" {
			if got := string(a.Effect()); got != val {
				fail("total effect", got, val)
			}
			continue
		}
		if k >= len(a.Statements) {
			fail("statement", "missing", "present")
			return
		}
		st := &a.Statements[k]
		switch key {
		case "effect":
			if string(st.Effect) != val {
				fail(key, string(st.Effect)+" ("+st.Error+")", val)
			}
		case "cmd":
			if want := strings.ReplaceAll(val, "_", " "); st.Command != want {
				fail(key, st.Command, want)
			}
		case "reads":
			if got, want := relNames(st.Reads), list(val); !slices.Equal(got, want) {
				fail(key, strings.Join(got, ","), strings.Join(want, ","))
			}
		case "writes":
			if got, want := relNames(st.Writes), list(val); !slices.Equal(got, want) {
				fail(key, strings.Join(got, ","), strings.Join(want, ","))
			}
		case "where":
			got := "none"
			if st.HasWhere {
				got = "some"
			}
			if st.WhereAlwaysTrue {
				got = "true"
			}
			if got != val {
				fail(key, got, val)
			}
		case "limit":
			if got := strconv.FormatInt(st.Limit, 10); got != val {
				fail(key, got, val)
			}
		case "dangers":
			got := []string{}
			for _, d := range st.Dangers {
				got = append(got, string(d))
			}
			sort.Strings(got)
			if want := list(val); !slices.Equal(got, want) {
				fail(key, strings.Join(got, ","), strings.Join(want, ","))
			}
		case "danger":
			if !st.HasDanger(Danger(val)) {
				fail(key, "absent", val)
			}
		case "fns":
			got := append([]string{}, st.Functions...)
			sort.Strings(got)
			if want := list(val); !slices.Equal(got, want) {
				fail(key, strings.Join(got, ","), strings.Join(want, ","))
			}
		case "cols":
			if want := strings.ReplaceAll(val, "~", " "); colString(st.Columns) != want {
				fail(key, colString(st.Columns), want)
			}
		case "err":
			if st.Effect != Unknown || st.Error == "" {
				fail(key, string(st.Effect)+" "+strconv.Quote(st.Error), "unknown with a message")
			} else if val != "" && !strings.Contains(st.Error, strings.ReplaceAll(val, "_", " ")) {
				fail(key, st.Error, val)
			}
		case "text":
			if want := strings.ReplaceAll(val, "_", " "); st.Text != want {
				fail(key, st.Text, want)
			}
		default:
			t.Fatalf("corpus.txt:%d: unknown key %q", c.line, key)
		}
	}
}

package sqlinfo

import (
	"reflect"
	"strings"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// fuzzShared sees every input of a fuzz run, so its cache is full of other
// shapes: what it returns must equal a fresh analysis of the same string.
var fuzzShared = NewAnalyzer(512)

func addCorpusSeeds(f *testing.F, d Dialect) {
	cases := loadCorpus(&testing.T{})
	for _, c := range cases {
		if c.dialect == d {
			f.Add(c.query)
		}
	}
}

func checkFuzz(t *testing.T, d Dialect, q string) *Analysis {
	fresh := NewAnalyzer(1).Analyze(d, q)
	cached := fuzzShared.Analyze(d, q)
	if !reflect.DeepEqual(fresh, cached) {
		t.Fatalf("cached analysis differs from a fresh one for %q:\nfresh  %+v\ncached %+v", q, fresh, cached)
	}
	if len(fresh.Statements) == 0 {
		t.Fatalf("no statements for %q", q)
	}
	for _, st := range fresh.Statements {
		if st.Effect == Unknown && st.Error == "" {
			t.Fatalf("unknown without a message for %q", q)
		}
		if st.Effect != Unknown && st.Error != "" {
			t.Fatalf("error %q on a %s statement for %q", st.Error, st.Effect, q)
		}
		if st.Effect == "" {
			t.Fatalf("no effect for %q", q)
		}
		if !strings.Contains(q, st.Text) {
			t.Fatalf("statement text %q is not part of %q", st.Text, q)
		}
	}
	return fresh
}

func FuzzAnalyzePostgres(f *testing.F) {
	addCorpusSeeds(f, Postgres)
	f.Fuzz(func(t *testing.T, q string) {
		a := checkFuzz(t, Postgres, q)
		if _, err := pg.Parse(q); err != nil && a.Effect() != Unknown {
			t.Fatalf("the parser rejects %q (%v) but the analysis says %s", q, err, a.Effect())
		}
	})
}

func FuzzAnalyzeMySQL(f *testing.F) {
	addCorpusSeeds(f, MySQL)
	f.Fuzz(func(t *testing.T, q string) {
		checkFuzz(t, MySQL, q)
	})
}

func FuzzAnalyzeSQLite(f *testing.F) {
	addCorpusSeeds(f, SQLite)
	f.Fuzz(func(t *testing.T, q string) {
		checkFuzz(t, SQLite, q)
	})
}

package sqlinfo

import (
	"bytes"
	"log"
	"testing"
)

// The MySQL parser library logs through the standard logger when it accepts
// a half-read DDL statement; the analyzer must neither log nor accept it.
func TestMySQLParserDoesNotLog(t *testing.T) {
	var buf bytes.Buffer
	prev, flags := log.Writer(), log.Flags()
	log.SetOutput(&buf)
	defer func() { log.SetOutput(prev); log.SetFlags(flags) }()

	for _, q := range []string{
		"CREATE TABLE t (id int) ENGINE=InnoDB PARTITION BY nonsense",
		"ALTER TABLE t ADD COLUMN x int, DROP COLUMN y, garbage garbage",
		"DROP TABLE a, b",
	} {
		a := NewAnalyzer(4).Analyze(MySQL, q)
		if st := a.Statements[0]; st.Effect != Unknown && st.Effect != DDL {
			t.Errorf("%q: effect %s", q, st.Effect)
		}
	}
	if buf.Len() > 0 {
		t.Errorf("the analyzer wrote to the global log: %q", buf.String())
	}
}

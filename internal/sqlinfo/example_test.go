package sqlinfo_test

import (
	"fmt"

	"github.com/guardedsql/guard/internal/sqlinfo"
)

func ExampleAnalyze() {
	a := sqlinfo.Analyze(sqlinfo.Postgres,
		"WITH gone AS (DELETE FROM public.users WHERE 1=1 RETURNING email) SELECT lower(email) AS e FROM gone")
	st := a.Statements[0]
	fmt.Println(st.Command, st.Effect, st.Writes, st.Dangers, st.WhereAlwaysTrue)
	fmt.Println(st.Columns[0].Name, st.Columns[0].Sources)
	fmt.Println(a.Fingerprint)
	// Output:
	// SELECT write [public.users] [hidden_write] true
	// e [public.users.email]
	// WITH gone AS (DELETE FROM public.users WHERE ?=? RETURNING email) SELECT lower(email) AS e FROM gone
}

func ExampleNewAnalyzer() {
	z := sqlinfo.NewAnalyzer(1024)
	a := z.Analyze(sqlinfo.MySQL, "SELECT 1; DROP TABLE users")
	fmt.Println(a.Effect(), a.Command(), a.Objects())
	// Output:
	// ddl SELECT;DROP TABLE [users]
}

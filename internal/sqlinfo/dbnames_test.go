package sqlinfo

import (
	"database/sql"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/lib/pq"
)

// The output column names the analyzer predicts must be the names the
// database reports: masking matches result columns by them.

var pgNameQueries = []string{
	"SELECT id, email FROM sqlinfo_users",
	"SELECT u.email AS contact FROM sqlinfo_users u",
	"SELECT lower(email), upper(name) FROM sqlinfo_users",
	"SELECT count(*), max(id), sum(id) FROM sqlinfo_users",
	"SELECT email::text, CAST(id AS bigint), '1'::int, 1::bigint FROM sqlinfo_users",
	"SELECT 1, 'a', id + 1, email || name FROM sqlinfo_users",
	"SELECT coalesce(name, email), nullif(name, email), greatest(id, 2), least(id, 3) FROM sqlinfo_users",
	"SELECT CASE WHEN id > 1 THEN email END, CASE WHEN id > 1 THEN 'x' ELSE name END FROM sqlinfo_users",
	"SELECT ARRAY[email], ROW(id, email), row_to_json(u) FROM sqlinfo_users u",
	"SELECT (SELECT max(email) FROM sqlinfo_users), EXISTS (SELECT 1), ARRAY(SELECT id FROM sqlinfo_users)",
	"SELECT current_user, current_date, now(), extract(year FROM now())",
	"SELECT s.e FROM (SELECT email AS e FROM sqlinfo_users) s",
	"SELECT * FROM (SELECT id, email FROM sqlinfo_users) s",
	"WITH t(x) AS (SELECT email FROM sqlinfo_users) SELECT x FROM t",
	"SELECT email FROM sqlinfo_users UNION SELECT name FROM sqlinfo_users",
	"SELECT v.column1, v.column2 FROM (VALUES (1, 'a')) v",
	"SELECT name COLLATE \"C\", (email) FROM sqlinfo_users",
	"SELECT u FROM sqlinfo_users u",
}

var myNameQueries = []string{
	"SELECT id, email FROM sqlinfo_users",
	"SELECT u.email AS contact FROM sqlinfo_users u",
	"SELECT s.e FROM (SELECT email AS e FROM sqlinfo_users) s",
	"SELECT email FROM sqlinfo_users UNION SELECT name FROM sqlinfo_users",
	"SELECT x.id, x.email FROM (SELECT id, email FROM sqlinfo_users) x",
	// MySQL names an expression after its text; the parser reprints it, so
	// the names match when the text is written in the parser's style.
	"SELECT lower(email), id + 1, count(*) FROM sqlinfo_users GROUP BY email, id",
}

func dbColumns(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%q: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	return cols
}

func checkNames(t *testing.T, db *sql.DB, d Dialect, queries []string) {
	for _, q := range queries {
		want := dbColumns(t, db, q)
		st := NewAnalyzer(4).Analyze(d, q).Statements[0]
		var got []string
		for _, c := range st.Columns {
			if c.Star {
				t.Errorf("%q: unexpected unexpanded star", q)
			}
			got = append(got, c.Name)
		}
		if len(got) != len(want) {
			t.Errorf("%s %q: columns %q, the database reports %q", d, q, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s %q: column %d named %q, the database reports %q", d, q, i, got[i], want[i])
			}
		}
	}
}

func TestColumnNamesMatchPostgreSQL(t *testing.T) {
	db, err := sql.Open("postgres", "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatalf("PostgreSQL at 127.0.0.1:5432 (user postgres, db test) is not reachable: %v; "+
			"start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", err)
	}
	db.SetMaxOpenConns(1) // the temp table lives on one connection
	if _, err := db.Exec("CREATE TEMP TABLE sqlinfo_users (id int, email text, name text)"); err != nil {
		t.Fatal(err)
	}
	checkNames(t, db, Postgres, pgNameQueries)
}

func TestColumnNamesMatchMariaDB(t *testing.T) {
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/test")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		t.Fatalf("MariaDB at 127.0.0.1:3306 (user root, db test) is not reachable: %v; "+
			"start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TEMPORARY TABLE sqlinfo_users (id int, email text, name text)"); err != nil {
		t.Fatal(err)
	}
	checkNames(t, db, MySQL, myNameQueries)
}

// Package testdb gives tests an isolated place in the real databases.
//
// Tests run against the real PostgreSQL and MariaDB (DESIGN.md section 10),
// and packages run in parallel, so every test gets its own PostgreSQL schema
// (selected through search_path in the DSN) or its own MariaDB database,
// dropped when the test ends. SQLite gets a file in t.TempDir().
//
//	func TestOrders(t *testing.T) {
//		db := testdb.Postgres(t, "postgres") // lib/pq, fresh schema
//		_, err := db.Exec("CREATE TABLE orders (id int PRIMARY KEY)")
//		...
//	}
//
// The servers default to the development and CI set-up (PostgreSQL at
// 127.0.0.1:5432 as postgres with trust auth, MariaDB at 127.0.0.1:3306 as
// root with an empty password, both with a database named test). The
// environment variables GUARD_TEST_PG_DSN and GUARD_TEST_MYSQL_DSN point the
// tests elsewhere. A server that cannot be reached fails the test with a
// message saying how to start it; tests never skip.
package testdb

package guard

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"strings"
	"sync"

	"github.com/lib/pq"

	"github.com/guardedsql/guard/internal/sqlinfo"
)

// PostgresDriverName is the name under which the package registers a guarded
// lib/pq: sql.Open("guarded-postgres", dsn).
const PostgresDriverName = "guarded-postgres"

func init() {
	Register(PostgresDriverName, &pq.Driver{})
}

// Register makes a guarded d available to sql.Open under name. Like
// sql.Register it panics if name is already registered: that is a programming
// error at init time, not bad input.
func Register(name string, d driver.Driver, opts ...Option) {
	sql.Register(name, Wrap(d, opts...))
}

// Wrap returns a driver that guards every statement run through d.
//
// The returned driver implements driver.DriverContext, so sql.Open reads the
// guard's settings from the DSN once, when the *sql.DB is opened, and reports a
// bad setting as an error from the first use (database/sql defers it).
func Wrap(d driver.Driver, opts ...Option) driver.Driver {
	return &guardedDriver{inner: d, opts: opts}
}

// guardedDriver is the driver.Driver returned by Wrap.
type guardedDriver struct {
	inner driver.Driver
	opts  []Option

	mu         sync.Mutex
	connectors map[string]*connector // for the legacy Open(name) path
}

var (
	_ driver.Driver        = (*guardedDriver)(nil)
	_ driver.DriverContext = (*guardedDriver)(nil)
)

// Open opens a guarded connection. database/sql uses OpenConnector instead;
// Open serves callers holding db.Driver(), and shares one guard per DSN.
func (d *guardedDriver) Open(name string) (driver.Conn, error) {
	d.mu.Lock()
	c, ok := d.connectors[name]
	if !ok {
		var err error
		c, err = d.newConnector(name)
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		if d.connectors == nil {
			d.connectors = map[string]*connector{}
		}
		d.connectors[name] = c
	}
	d.mu.Unlock()
	return c.Connect(context.Background())
}

// OpenConnector reads the guard's settings from name, strips them, and
// returns a connector for the wrapped driver.
func (d *guardedDriver) OpenConnector(name string) (driver.Connector, error) {
	return d.newConnector(name)
}

func (d *guardedDriver) newConnector(name string) (*connector, error) {
	stripped, dsnSettings, err := splitDSN(name)
	if err != nil {
		return nil, err
	}
	cfg, err := buildConfig(d.inner, dsnSettings, d.opts)
	if err != nil {
		return nil, err
	}
	if cfg.database == "" {
		cfg.database = databaseFromDSN(stripped)
	}
	e, err := newEngine(cfg)
	if err != nil {
		return nil, err
	}
	var inner driver.Connector
	if dc, ok := d.inner.(driver.DriverContext); ok {
		inner, err = dc.OpenConnector(stripped)
		if err != nil {
			_ = e.close(context.Background())
			return nil, err
		}
	} else {
		inner = dsnConnector{dsn: stripped, d: d.inner}
	}
	return &connector{inner: inner, e: e}, nil
}

// buildConfig layers defaults, environment, DSN settings and Options.
func buildConfig(inner driver.Driver, dsnSettings map[string]rawSetting, opts []Option) (config, error) {
	cfg := config{dialect: dialectOf(inner), driverName: driverNameOf(inner)}
	if err := applySettings(&cfg, envSettings(environ()), dsnSettings); err != nil {
		return cfg, err
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return cfg, nil
}

// dsnConnector adapts a driver without DriverContext.
type dsnConnector struct {
	dsn string
	d   driver.Driver
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// dialectOf picks the grammar for a driver from its package: MySQL for
// go-sql-driver/mysql, SQLite (the PostgreSQL grammar after SQLite's own
// splitting and placeholders) for modernc.org/sqlite and mattn/go-sqlite3,
// PostgreSQL for everything else (lib/pq, pgx).
func dialectOf(d driver.Driver) sqlinfo.Dialect {
	p := pkgPathOf(d)
	switch {
	case strings.Contains(p, "mysql"):
		return sqlinfo.MySQL
	case strings.Contains(p, "sqlite"):
		return sqlinfo.SQLite
	}
	return sqlinfo.Postgres
}

// driverNameOf names a driver for audit records.
func driverNameOf(d driver.Driver) string {
	p := pkgPathOf(d)
	switch {
	case strings.HasSuffix(p, "lib/pq"):
		return "lib/pq"
	case strings.Contains(p, "jackc/pgx"):
		return "pgx"
	case strings.Contains(p, "go-sql-driver/mysql"):
		return "mysql"
	case strings.Contains(p, "sqlite"):
		return "sqlite"
	}
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

func pkgPathOf(v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return ""
	}
	return t.PkgPath()
}

package guard

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"sync"
)

// NewConnector returns a connector that guards every statement run through
// connections from c, for sql.OpenDB. Settings come from the environment and
// opts (there is no DSN); a bad setting is returned by the first Connect.
func NewConnector(c driver.Connector, opts ...Option) driver.Connector {
	cfg, err := buildConfig(c.Driver(), nil, opts)
	if err != nil {
		return &connector{inner: c, err: err}
	}
	e, err := newEngine(cfg)
	if err != nil {
		return &connector{inner: c, err: err}
	}
	return &connector{inner: c, e: e}
}

// connector is the guarded driver.Connector.
type connector struct {
	inner driver.Connector
	e     *engine
	err   error // configuration error, reported at first use

	closeOnce sync.Once
	closeErr  error
}

var (
	_ driver.Connector = (*connector)(nil)
	_ io.Closer        = (*connector)(nil)
)

// Connect opens a guarded connection.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.err != nil {
		return nil, c.err
	}
	inner, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newConn(c.e, inner), nil
}

// Driver returns a driver whose connections are guarded by this connector's
// guard, so db.Driver().Open is no way around it.
func (c *connector) Driver() driver.Driver { return &connectorDriver{c: c} }

// Close closes the guard (flushing its audit trail) and the wrapped connector
// if it has a Close. database/sql calls it from DB.Close.
func (c *connector) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		if c.e != nil {
			errs = append(errs, c.e.close(context.Background()))
		}
		if cl, ok := c.inner.(io.Closer); ok {
			errs = append(errs, cl.Close())
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// connectorDriver is what a guarded connector reports as its Driver.
type connectorDriver struct{ c *connector }

// Open opens a connection of the wrapped driver to name and guards it with
// the connector's guard.
func (d *connectorDriver) Open(name string) (driver.Conn, error) {
	if d.c.err != nil {
		return nil, d.c.err
	}
	stripped, _, err := splitDSN(name)
	if err != nil {
		return nil, err
	}
	inner, err := d.c.inner.Driver().Open(stripped)
	if err != nil {
		return nil, err
	}
	return newConn(d.c.e, inner), nil
}

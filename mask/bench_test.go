package mask

import (
	"context"
	"database/sql/driver"
	"testing"
	"time"

	"github.com/guardedsql/guard/internal/sqlinfo"
)

// BenchmarkApply10Columns measures the per-row cost of a plan over a
// typical 10-column row: 4 columns masked by name, 4 text columns scanned
// by the value detectors, 2 numbers and times left alone.
func BenchmarkApply10Columns(b *testing.B) {
	e, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	rs := ResultSet{
		Columns:       []string{"id", "email", "phone", "first_name", "card_number", "created_at", "status", "sku", "notes", "ref"},
		DatabaseTypes: []string{"INT8", "TEXT", "TEXT", "TEXT", "TEXT", "TIMESTAMPTZ", "TEXT", "TEXT", "TEXT", "UUID"},
	}
	p := e.Plan(context.Background(), rs)
	row := []driver.Value{int64(42), "alice@example.com", []byte("+1 650-253-0000"), "Alice", "4111111111111111",
		time.Now(), "shipped", []byte("SKU-ABC-1234"), "Left at the door on 2024-05-06, customer happy", "123e4567-e89b-12d3-a456-426614174000"}
	dest := make([]driver.Value, len(row))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(dest, row)
		p.Apply(dest)
	}
}

// BenchmarkPlan measures building a plan, which happens once per result set.
func BenchmarkPlan(b *testing.B) {
	e, err := New(&Config{Exemptions: []Exemption{{Name: "r", When: `'pii_reader' in identity.roles`}}})
	if err != nil {
		b.Fatal(err)
	}
	rs := ResultSet{Identity: agent, Columns: []string{"id", "email", "phone", "first_name", "card_number", "created_at", "status", "sku", "notes", "ref"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.Plan(context.Background(), rs)
	}
}

// BenchmarkPlanPointSelect measures the plan of a repeated point SELECT as
// the root driver builds it on every query: the analysis' statement with its
// lineage, the driver's column names and database types, the zero-setup
// configuration and a policy-file configuration with a kind strategy, a
// conditional rule and an exemption. Run it with -cpu 1,16 for contention.
func BenchmarkPlanPointSelect(b *testing.B) {
	an := sqlinfo.Analyze(sqlinfo.Postgres, "SELECT id, owner, balance, email FROM accounts WHERE id = $1")
	st := &an.Statements[0]
	cfgs := []struct {
		name string
		cfg  *Config
	}{
		{"default", nil},
		{"policy", &Config{
			Kinds:      map[string]string{"agent": Partial},
			Rules:      []Rule{{Name: "secrets", Classes: []string{"secret"}, Strategy: Null, When: `identity.kind == 'agent'`}},
			Exemptions: []Exemption{{Name: "r", When: `'pii_reader' in identity.roles`}},
		}},
	}
	for _, c := range cfgs {
		b.Run(c.name, func(b *testing.B) {
			e, err := New(c.cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					// the driver hands a fresh slice per result set
					rs := ResultSet{Identity: agent, Statement: st,
						Columns:       []string{"id", "owner", "balance", "email"},
						DatabaseTypes: []string{"INT4", "TEXT", "INT8", "TEXT"}}
					if e.Plan(context.Background(), rs) == nil {
						b.Fatal("no plan for a result set with an email column")
					}
				}
			})
		})
	}
}

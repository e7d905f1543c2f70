package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// twentyRules is a realistic 20-rule policy: the baseline's ten plus ten
// identity- and table-based rules, none of which matches the benchmarked
// statement, so every rule is evaluated.
func twentyRules(tb testing.TB) *Policy {
	var b strings.Builder
	b.WriteString("name: bench\nextends: baseline\nrules:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  - name: team-%d\n    match: \"'team-%d' in identity.roles && stmt.tables.exists(t, t.startsWith('t%d.'))\"\n    effect: deny\n", i, i, i)
	}
	p, err := Parse([]byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	if n := len(p.Rules()); n != 20 {
		tb.Fatalf("%d rules", n)
	}
	return p
}

// BenchmarkDecide measures one decision for an already analyzed (cached)
// statement against a 20-rule policy.
func BenchmarkDecide(b *testing.B) {
	p := twentyRules(b)
	in := &Input{
		Identity: identity.Identity{Subject: "copilot-7", Kind: identity.Agent, Roles: []string{"support"},
			OnBehalfOf: &identity.Identity{Subject: "alice@example.com", Kind: identity.Human}},
		Analysis: &sqlinfo.Analysis{Dialect: sqlinfo.Postgres, Statements: []sqlinfo.Statement{{
			Text: "SELECT id, email FROM crm.customers WHERE id = $1", Command: "SELECT", Effect: sqlinfo.Read,
			Reads: []sqlinfo.Relation{{Schema: "crm", Name: "customers"}}, Limit: -1,
		}}},
		Request: Request{Kind: KindQuery},
	}
	ctx := context.Background()
	if d := p.Decide(ctx, in); d.Effect != Allow {
		b.Fatalf("%+v", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.Decide(ctx, in)
	}
}

// BenchmarkDecideUncached is the same decision when the analysis is a new
// value every time (no prefilter cache hit): the cost of evaluating 20 rules.
func BenchmarkDecideUncached(b *testing.B) {
	p := twentyRules(b)
	st := sqlinfo.Statement{
		Text: "SELECT id, email FROM crm.customers WHERE id = $1", Command: "SELECT", Effect: sqlinfo.Read,
		Reads: []sqlinfo.Relation{{Schema: "crm", Name: "customers"}}, Limit: -1,
	}
	id := identity.Identity{Subject: "copilot-7", Kind: identity.Agent, Roles: []string{"support"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(ctx, &Input{Identity: id, Analysis: &sqlinfo.Analysis{Dialect: sqlinfo.Postgres, Statements: []sqlinfo.Statement{st}}})
	}
}

// BenchmarkDecideMatching is a cached statement for which identity-dependent
// rules must be evaluated: an agent's INSERT, held for approval.
func BenchmarkDecideMatching(b *testing.B) {
	p := twentyRules(b)
	in := &Input{
		Identity: identity.Identity{Subject: "copilot-7", Kind: identity.Agent, Roles: []string{"team-3"}},
		Analysis: &sqlinfo.Analysis{Dialect: sqlinfo.Postgres, Statements: []sqlinfo.Statement{{
			Text: "INSERT INTO t3.items VALUES ($1)", Command: "INSERT", Effect: sqlinfo.Write,
			Writes: []sqlinfo.Relation{{Schema: "t3", Name: "items"}}, Limit: -1,
		}}},
	}
	ctx := context.Background()
	if d := p.Decide(ctx, in); d.Effect != Deny || d.Rule != "team-3" {
		b.Fatalf("%+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(ctx, in)
	}
}

package mask

import (
	"context"
	"database/sql/driver"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// cacheCase is one result set with a row to mask through it.
type cacheCase struct {
	name  string
	query string // analyzed for lineage; "" for none
	cols  []string
	types []string
	id    identity.Identity
	row   []driver.Value
}

func (c cacheCase) rs() ResultSet {
	rs := ResultSet{Identity: c.id, Columns: slices.Clone(c.cols), DatabaseTypes: slices.Clone(c.types)}
	if c.query != "" {
		rs.Statement = &sqlinfo.Analyze(sqlinfo.Postgres, c.query).Statements[0]
	}
	return rs
}

// cacheCases differ from each other in exactly what a wrongly shared
// skeleton or decision would carry over: lineage behind the same column
// names, column names behind the same statement, database types behind the
// same names, and identities.
func cacheCases() []cacheCase {
	text := "hello world, nothing to see"
	human := identity.Identity{Subject: "pat@corp", Kind: identity.Human}
	return []cacheCase{
		// same output name and type, different lineage
		{name: "lineage-email", query: "SELECT lower(email) AS v FROM users", cols: []string{"v"}, types: []string{"TEXT"}, id: agent, row: []driver.Value{text}},
		{name: "lineage-status", query: "SELECT lower(status) AS v FROM users", cols: []string{"v"}, types: []string{"TEXT"}, id: agent, row: []driver.Value{text}},
		{name: "lineage-ssn", query: "SELECT upper(ssn) AS v FROM users", cols: []string{"v"}, types: []string{"TEXT"}, id: agent, row: []driver.Value{text}},
		// the same statement text returning other columns (SELECT * after ALTER TABLE)
		{name: "star-a", query: "SELECT * FROM users", cols: []string{"id", "v"}, types: []string{"INT4", "TEXT"}, id: agent, row: []driver.Value{int64(1), text}},
		{name: "star-b", query: "SELECT * FROM users", cols: []string{"id", "email"}, types: []string{"INT4", "TEXT"}, id: agent, row: []driver.Value{int64(1), text}},
		// no statement: names and types alone
		{name: "names-a", cols: []string{"id", "notes"}, types: []string{"INT4", "TEXT"}, id: agent, row: []driver.Value{int64(1), "mail alice@example.com"}},
		{name: "names-b", cols: []string{"id", "phone"}, types: []string{"INT4", "TEXT"}, id: agent, row: []driver.Value{int64(1), "mail alice@example.com"}},
		{name: "types-bytea", cols: []string{"id", "notes"}, types: []string{"INT4", "BYTEA"}, id: agent, row: []driver.Value{int64(1), []byte("mail alice@example.com")}},
		{name: "types-none", cols: []string{"id", "notes"}, id: agent, row: []driver.Value{int64(1), "mail alice@example.com"}},
		// a name split differently over the columns
		{name: "split-a", cols: []string{"a", "b"}, types: []string{"TEXT", "TEXT"}, id: agent, row: []driver.Value{text, text}},
		{name: "split-b", cols: []string{"a\x00b", ""}, types: []string{"TEXT", "TEXT"}, id: agent, row: []driver.Value{text, text}},
		// identities: kind, roles, principal, subject
		{name: "id-human", cols: []string{"email", "card_number"}, id: human, row: []driver.Value{"alice@example.com", "4111111111111111"}},
		{name: "id-reader", cols: []string{"email", "card_number"}, id: reader, row: []driver.Value{"alice@example.com", "4111111111111111"}},
		{name: "id-support", cols: []string{"email", "card_number"}, id: support, row: []driver.Value{"alice@example.com", "4111111111111111"}},
		{name: "id-dpo", cols: []string{"email", "card_number"}, id: identity.Identity{Subject: "dpo@corp", Kind: identity.Human, Roles: []string{"support"}}, row: []driver.Value{"alice@example.com", "4111111111111111"}},
		{name: "id-agent-for-reader", cols: []string{"email", "card_number"}, id: identity.Identity{Subject: "bot", Kind: identity.Agent, OnBehalfOf: &reader}, row: []driver.Value{"alice@example.com", "4111111111111111"}},
		{name: "id-privacy-team", cols: []string{"email", "card_number"}, id: identity.Identity{Subject: "sam@corp", Kind: identity.Human, Roles: []string{"support"}, Attributes: map[string]string{"team": "privacy"}}, row: []driver.Value{"alice@example.com", "4111111111111111"}},
		{name: "id-anonymous", cols: []string{"email", "card_number"}, row: []driver.Value{"alice@example.com", "4111111111111111"}},
	}
}

type cacheOutcome struct {
	row   []driver.Value
	stats []ColumnStat
}

func planOnce(t *testing.T, e *Engine, c cacheCase) cacheOutcome {
	t.Helper()
	row, stats := apply(t, e, c.rs(), c.row...)
	return cacheOutcome{row, stats}
}

// TestPlanCacheNeverSharesWrongly plans every case through one engine, in
// forward and reverse order, twice (so the second pass is served from the
// caches), with the real hash and with every shape hashing alike, and
// requires each outcome to equal that of a fresh engine that caches nothing
// yet.
func TestPlanCacheNeverSharesWrongly(t *testing.T) {
	cfgs := map[string]*Config{
		"default": nil,
		"keyed conditions": {
			Kinds:      map[string]string{"agent": Hash, "human": Partial},
			Rules:      []Rule{{Name: "humans-see-cards-partially", Classes: []string{"card"}, Strategy: Partial, When: `principal.kind == 'human' && !identity.anonymous`}},
			Exemptions: []Exemption{{Name: "pii-readers", When: `'pii_reader' in principal.roles`, Classes: []string{"email"}}},
		},
		"subject condition": {
			Kinds:      map[string]string{"agent": Hash, "human": Partial},
			Exemptions: []Exemption{{Name: "dpo", When: `identity.subject == 'dpo@corp'`}},
		},
		"attribute condition (not cached)": {
			Kinds:      map[string]string{"agent": Hash, "human": Partial},
			Exemptions: []Exemption{{Name: "privacy-team", When: `'team' in identity.attributes && identity.attributes.team == 'privacy'`}},
		},
	}
	key := WithHashKey([]byte("0123456789abcdef0123456789abcdef"))
	cases := cacheCases()
	for cname, cfg := range cfgs {
		want := map[string]cacheOutcome{}
		for _, c := range cases {
			want[c.name] = planOnce(t, mustNew(t, cfg, key), c)
		}
		for _, collide := range []bool{false, true} {
			for _, reverse := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/collide=%v/reverse=%v", cname, collide, reverse), func(t *testing.T) {
					e := mustNew(t, cfg, key)
					if collide {
						e.hashCols = func(_, _ []string) uint64 { return 7 }
					}
					order := slices.Clone(cases)
					if reverse {
						slices.Reverse(order)
					}
					for pass := 0; pass < 2; pass++ {
						for _, c := range order {
							assert.Equal(t, want[c.name], planOnce(t, e, c), "%s, pass %d", c.name, pass)
						}
					}
				})
			}
		}
	}
}

// The cases above must actually differ, or the test proves nothing.
func TestPlanCacheCasesDiffer(t *testing.T) {
	e := mustNew(t, nil)
	out := map[string]cacheOutcome{}
	for _, c := range cacheCases() {
		out[c.name] = planOnce(t, e, c)
	}
	pairs := [][2]string{{"lineage-email", "lineage-status"}, {"lineage-email", "lineage-ssn"}, {"star-a", "star-b"},
		{"names-a", "names-b"}, {"names-a", "types-bytea"}}
	for _, p := range pairs {
		assert.NotEqual(t, out[p[0]], out[p[1]], "%s vs %s", p[0], p[1])
	}
	assert.Equal(t, "[masked:email]", out["lineage-email"].row[0])
	assert.Equal(t, "hello world, nothing to see", out["lineage-status"].row[0])

	k := mustNew(t, &Config{Kinds: map[string]string{"human": Partial},
		Exemptions: []Exemption{{Name: "pii-readers", When: `'pii_reader' in principal.roles`}}})
	assert.NotEqual(t, planOnce(t, k, cacheCases()[12]).row, planOnce(t, k, cacheCases()[13]).row, "reader vs support")
	s := mustNew(t, &Config{Exemptions: []Exemption{{Name: "dpo", When: `identity.subject == 'dpo@corp'`}}})
	assert.True(t, s.condKeyed && s.condSubject)
	assert.NotEqual(t, planOnce(t, s, cacheCases()[13]).row, planOnce(t, s, cacheCases()[14]).row, "support vs dpo")
	a := mustNew(t, &Config{Exemptions: []Exemption{{Name: "privacy-team", When: `'team' in identity.attributes && identity.attributes.team == 'privacy'`}}})
	assert.False(t, a.condKeyed)
	assert.NotEqual(t, planOnce(t, a, cacheCases()[13]).row, planOnce(t, a, cacheCases()[16]).row, "support vs privacy team")
}

// TestPlanCacheHits shows the caches are used: a statement run again with
// the same columns, or with other literals, builds no new skeleton.
func TestPlanCacheHits(t *testing.T) {
	e := mustNew(t, nil)
	plan := func(q string, cols ...string) {
		rs := ResultSet{Identity: agent, Statement: &sqlinfo.Analyze(sqlinfo.Postgres, q).Statements[0], Columns: cols}
		e.Plan(context.Background(), rs)
	}
	plan("SELECT id, email FROM cache_hits WHERE id = 1", "id", "email")
	plan("SELECT id, email FROM cache_hits WHERE id = 1", "id", "email")
	assert.Equal(t, int64(1), e.skelBuilds.Load())
	plan("SELECT id, email FROM cache_hits WHERE id = 2", "id", "email")
	assert.Equal(t, int64(1), e.skelBuilds.Load(), "other literals share the analysis' lineage")
	plan("SELECT id, email FROM cache_hits WHERE id = 1", "id", "mail")
	assert.Equal(t, int64(2), e.skelBuilds.Load(), "other column names are another shape")
	plan("SELECT id, status FROM cache_hits WHERE id = 1", "id", "email")
	assert.Equal(t, int64(3), e.skelBuilds.Load(), "another statement is another shape")
}

func TestPlanNilWhenNothingCanBeMasked(t *testing.T) {
	e := mustNew(t, nil)
	rs := ResultSet{Identity: agent, Columns: []string{"id", "created_at", "active"}, DatabaseTypes: []string{"INT8", "TIMESTAMPTZ", "BOOL"}}
	for i := 0; i < 3; i++ {
		assert.Nil(t, e.Plan(context.Background(), rs))
	}
	// a rule glob can make a number column sensitive for someone
	r := mustNew(t, &Config{Rules: []Rule{{Name: "ids", Columns: []string{"id"}, Strategy: Redact, When: `identity.kind == 'human'`}}})
	assert.Nil(t, r.Plan(context.Background(), rs))
	rs.Identity = reader
	require.NotNil(t, r.Plan(context.Background(), rs))
	row := []driver.Value{int64(42), nil, true}
	r.Plan(context.Background(), rs).Apply(row)
	assert.Equal(t, int64(0), row[0])
}

func TestReadsOnlyKeyed(t *testing.T) {
	env, err := celEnv()
	require.NoError(t, err)
	type want struct{ keyed, subject bool }
	for expr, w := range map[string]want{
		`'x' in identity.roles`:                                      {true, false},
		`identity.kind == 'agent' && principal.anonymous`:            {true, false},
		`principal.roles.exists(r, r == 'dpo')`:                      {true, false},
		`has(identity.kind)`:                                         {true, false},
		`true`:                                                       {true, false},
		`identity.subject == 'a'`:                                    {true, true},
		`'x' in identity.roles || principal.subject == 'dpo'`:        {true, true},
		`identity['roles'].size() > 0`:                               {false, false},
		`identity['subject'] == 'a'`:                                 {false, false},
		`identity.attributes.team == 'x'`:                            {false, false},
		`identity.session == 's'`:                                    {false, false},
		`identity.on_behalf_of.kind == 'human'`:                      {false, false},
		`size(identity) > 0`:                                         {false, false},
		`[identity].size() == 1`:                                     {false, false},
		`'x' in identity.roles || principal.session == 's'`:          {false, false},
		`[{'subject': 1}].exists(identity, identity.kind == 1)`:      {true, false},
		`[{'subject': 1}].exists(identity, identity == {'kind': 1})`: {false, false},
	} {
		_, keyed, subject, err := compileWhen(env, expr)
		require.NoError(t, err, expr)
		assert.Equal(t, w, want{keyed, subject}, expr)
	}
}

// TestPlanCacheConcurrent plans the cases from many goroutines at once on
// one engine (run with -race).
func TestPlanCacheConcurrent(t *testing.T) {
	cfg := &Config{Kinds: map[string]string{"human": Partial},
		Exemptions: []Exemption{{Name: "pii-readers", When: `'pii_reader' in principal.roles`, Classes: []string{"email"}}}}
	cases := cacheCases()
	want := map[string]cacheOutcome{}
	for _, c := range cases {
		want[c.name] = planOnce(t, mustNew(t, cfg), c)
	}
	e := mustNew(t, cfg)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				c := cases[(g+i)%len(cases)]
				p := e.Plan(context.Background(), c.rs())
				row := slices.Clone(c.row)
				var stats []ColumnStat
				if p != nil {
					p.Apply(row)
					stats = p.Stats()
				}
				if !assert.Equal(t, want[c.name], cacheOutcome{row, stats}, c.name) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Cells count masked cells only: NULLs, numbers about a value (count(email))
// and columns an exemption returns in clear count none.
func TestStatsCellsSkipNotMasked(t *testing.T) {
	e := mustNew(t, &Config{Exemptions: []Exemption{{Name: "names", When: `identity.kind == 'agent'`, Classes: []string{"name"}}}})
	an := sqlinfo.Analyze(sqlinfo.Postgres, "SELECT email, count(email) AS n, first_name FROM users GROUP BY email, first_name")
	p := e.Plan(context.Background(), ResultSet{Identity: agent, Statement: &an.Statements[0], Columns: []string{"email", "n", "first_name"}})
	require.NotNil(t, p)
	for _, row := range [][]driver.Value{{"a@example.com", int64(3), "Al"}, {nil, int64(1), "Bo"}, {"c@example.com", "4111111111111111", nil}} {
		p.Apply(row)
	}
	st := p.Stats()
	require.Len(t, st, 3)
	assert.Equal(t, int64(2), st[0].Cells, "email: one NULL")
	assert.Equal(t, int64(1), st[1].Cells, "n: two counts left clear, one card-length value masked")
	assert.Equal(t, Clear, st[2].Strategy)
	assert.Equal(t, int64(0), st[2].Cells)
}

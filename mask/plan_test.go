package mask

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

var (
	agent   = identity.Identity{Subject: "copilot-7", Kind: identity.Agent}
	support = identity.Identity{Subject: "sam@corp", Kind: identity.Human, Roles: []string{"support"}}
	reader  = identity.Identity{Subject: "pat@corp", Kind: identity.Human, Roles: []string{"pii_reader"}}
)

func mustNew(t testing.TB, cfg *Config, opts ...Option) *Engine {
	t.Helper()
	e, err := New(cfg, opts...)
	require.NoError(t, err)
	return e
}

// apply runs one row through a fresh plan and returns the row and the stats.
func apply(t testing.TB, e *Engine, rs ResultSet, row ...driver.Value) ([]driver.Value, []ColumnStat) {
	t.Helper()
	p := e.Plan(context.Background(), rs)
	dest := append([]driver.Value(nil), row...)
	if p == nil {
		return dest, nil
	}
	p.Apply(dest)
	return dest, p.Stats()
}

func cols(names ...string) ResultSet { return ResultSet{Columns: names} }

func TestDefaultMasksByColumnName(t *testing.T) {
	e := mustNew(t, nil)
	bday := time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC)
	row, stats := apply(t, e, cols("id", "email", "phone", "dob", "password", "first_name", "status"),
		int64(7), "alice@example.com", []byte("+1 650-253-0000"), bday, "hunter2", "Alice", "active")
	assert.Equal(t, int64(7), row[0])
	assert.Equal(t, "[masked:email]", row[1])
	assert.Equal(t, []byte("[masked:phone]"), row[2])
	assert.Equal(t, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), row[3])
	assert.Equal(t, "[masked:secret]", row[4])
	assert.Equal(t, "[masked:name]", row[5])
	assert.Equal(t, "active", row[6])
	require.Len(t, stats, 5)
	assert.Equal(t, ColumnStat{Column: "email", Class: "email", Rule: "default", Strategy: "redact", Cells: 1, Source: "column-name"}, stats[0])
}

func TestNothingSensitiveIsNilPlan(t *testing.T) {
	e := mustNew(t, nil)
	rs := ResultSet{Columns: []string{"id", "amount", "created_at"}, DatabaseTypes: []string{"INT8", "NUMERIC", "TIMESTAMPTZ"}}
	assert.Nil(t, e.Plan(context.Background(), rs), "numbers and times without a sensitive name need no plan")
	bin := ResultSet{Columns: []string{"id", "attachment"}, DatabaseTypes: []string{"INT8", "BYTEA"}}
	assert.Nil(t, e.Plan(context.Background(), bin), "binary columns are not scanned: a rewrite would corrupt the file")
	off := mustNew(t, &Config{ValueScan: "off"})
	assert.Nil(t, off.Plan(context.Background(), cols("id", "notes")))
	dis := mustNew(t, &Config{Disabled: true})
	assert.Nil(t, dis.Plan(context.Background(), cols("email")))
}

func TestTypeKeeping(t *testing.T) {
	e := mustNew(t, &Config{DefaultStrategy: Partial})
	ts := time.Date(1990, 5, 17, 13, 4, 5, 0, time.FixedZone("X", 3600))
	rs := ResultSet{
		Columns:       []string{"card_number", "ssn", "dob", "dob_text", "phone", "ssn_int", "email", "last_name", "iban", "password"},
		DatabaseTypes: []string{"TEXT", "INT8", "DATE", "VARCHAR", "", "BIGINT", "TEXT", "TEXT", "TEXT", "TEXT"},
	}
	row, _ := apply(t, e, rs,
		"4111 1111 1111 1111", int64(536221234), ts, "1990-05-17", "6502530000", []byte("536221234"),
		"alice.smith@example.com", "O'Neill", "DE89370400440532013000", "correct horse battery staple")
	assert.Equal(t, "**** **** **** 1111", row[0])
	assert.Equal(t, int64(1234), row[1], "an int column stays an int64: last 4")
	assert.Equal(t, time.Date(1990, 1, 1, 0, 0, 0, 0, ts.Location()), row[2], "a time keeps only its year")
	assert.Equal(t, "1990-01-01", row[3], "date text keeps its layout")
	assert.Equal(t, "0000000000", row[4], "digits-only text stays digits: a caller may scan it into int64")
	assert.Equal(t, []byte("000001234"), row[5], "MySQL-style []byte integers stay integers")
	assert.Equal(t, "****@example.com", row[6])
	assert.Equal(t, "O***", row[7])
	assert.Equal(t, "******************3000", row[8])
	assert.Equal(t, "[masked:secret]", row[9], "a secret is never shown in part")
}

func TestPartialNeverReturnsShortOriginal(t *testing.T) {
	e := mustNew(t, &Config{DefaultStrategy: Partial})
	for _, v := range []string{"1234", "12", "a", "ab@x.io", "Al", "12-34"} {
		row, _ := apply(t, e, cols("card_number", "email", "first_name"), v, v, v)
		for i, out := range row {
			assert.NotEqual(t, v, out, "column %d value %q", i, v)
		}
	}
}

func TestHashIsDeterministicAndKeyed(t *testing.T) {
	cfg := &Config{DefaultStrategy: Hash}
	_, err := New(cfg)
	require.ErrorIs(t, err, ErrNoHashKey)
	require.ErrorIs(t, err, ErrInvalidConfig)

	e := mustNew(t, cfg, WithHashKey([]byte("k1-0123456789abcdef0123456789abcdef")))
	e2 := mustNew(t, cfg, WithHashKey([]byte("k2-0123456789abcdef0123456789abcdef")))
	rs := ResultSet{Columns: []string{"email", "ssn", "dob", "email"}}
	ts := time.Date(1990, 5, 17, 0, 0, 0, 0, time.UTC)
	a, _ := apply(t, e, rs, "alice@example.com", int64(536221234), ts, "bob@example.com")
	b, _ := apply(t, e, rs, "alice@example.com", int64(536221234), ts, "bob@example.com")
	c, _ := apply(t, e2, rs, "alice@example.com", int64(536221234), ts, "bob@example.com")
	assert.Equal(t, a, b, "equal in, equal out")
	assert.NotEqual(t, a[0], a[3])
	assert.NotEqual(t, a[0], c[0], "another key, another token")
	assert.Regexp(t, `^tok_[0-9a-f]{12}@masked\.invalid$`, a[0])
	assert.IsType(t, int64(0), a[1])
	assert.IsType(t, time.Time{}, a[2])
	assert.NotEqual(t, ts, a[2])

	t.Setenv("GUARD_TEST_MASK_KEY", "from-env-0123456789abcdef0123456789")
	fromEnv := mustNew(t, &Config{DefaultStrategy: Hash, HashKeyEnv: "GUARD_TEST_MASK_KEY"})
	d, _ := apply(t, fromEnv, rs, "alice@example.com", int64(1), ts, "x")
	assert.NotEqual(t, "alice@example.com", d[0])
}

func TestNullAndCustomStrategies(t *testing.T) {
	calls := 0
	e := mustNew(t, &Config{Rules: []Rule{
		{Name: "emails-null", Classes: []string{"email"}, Strategy: Null},
		{Name: "phones-custom", Classes: []string{"phone"}, Strategy: "last2"},
	}}, WithStrategy("last2", func(c Class, v driver.Value) driver.Value {
		calls++
		s, _ := v.(string)
		if len(s) < 8 {
			return "**"
		}
		return "**" + s[len(s)-2:]
	}))
	row, stats := apply(t, e, cols("email", "phone"), "a@example.com", "6502530000")
	assert.Nil(t, row[0])
	assert.Equal(t, "**00", row[1])
	assert.Equal(t, 1, calls)
	assert.Equal(t, "emails-null", stats[0].Rule)
	assert.Equal(t, "phones-custom", stats[1].Rule)

	_, err := New(&Config{Rules: []Rule{{Name: "x", Classes: []string{"email"}, Strategy: "nope"}}})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, `rule "x"`, ce.Where)
	assert.ErrorIs(t, err, ErrUnknownStrategy)
}

func TestNeverMutatesDriverBytes(t *testing.T) {
	e := mustNew(t, &Config{DefaultStrategy: Partial})
	buf := []byte("4111111111111111|note alice@example.com")
	card, note := buf[:16], buf[17:]
	dest := []driver.Value{card, note}
	p := e.Plan(context.Background(), cols("card_number", "notes"))
	require.NotNil(t, p)
	p.Apply(dest)
	assert.Equal(t, "4111111111111111|note alice@example.com", string(buf), "driver memory untouched")
	assert.Equal(t, []byte("0000000000001111"), dest[0], "digits stay digits, last 4 kept")
	assert.Equal(t, "note ****@example.com", string(dest[1].([]byte)))
}

func TestIdentityKindsRulesAndExemptions(t *testing.T) {
	cfg := &Config{
		Kinds: map[string]string{"agent": Hash, "human": Partial},
		Rules: []Rule{
			{Name: "no-secrets-ever", Classes: []string{"secret"}, Strategy: Null},
			{Name: "internal-notes", Columns: []string{"crm.tickets.internal_*"}, Class: "internal", Strategy: Redact},
		},
		Exemptions: []Exemption{
			{Name: "pii-readers", When: `'pii_reader' in identity.roles`, Classes: []string{"email", "phone", "name"}},
		},
	}
	e := mustNew(t, cfg, WithHashKey([]byte("0123456789abcdef0123456789abcdef")))
	stmt := &sqlinfo.Statement{Columns: []sqlinfo.OutputColumn{
		{Name: "email", Sources: []sqlinfo.ColumnRef{{Relation: sqlinfo.Relation{Schema: "crm", Name: "customers"}, Column: "email"}}},
		{Name: "api_key", Sources: []sqlinfo.ColumnRef{{Relation: sqlinfo.Relation{Schema: "crm", Name: "customers"}, Column: "api_key"}}},
		{Name: "internal_note", Sources: []sqlinfo.ColumnRef{{Relation: sqlinfo.Relation{Schema: "crm", Name: "tickets"}, Column: "internal_note"}}},
	}}
	rs := ResultSet{Statement: stmt, Columns: []string{"email", "api_key", "internal_note"}}
	row := func(id identity.Identity) []driver.Value {
		rs.Identity = id
		r, _ := apply(t, e, rs, "alice@example.com", "key-123", "customer is angry")
		return r
	}
	a := row(agent)
	assert.Regexp(t, `^tok_.*@masked\.invalid$`, a[0], "agents get tokens")
	assert.Nil(t, a[1])
	assert.Equal(t, "[masked:internal]", a[2], "a rule can make any column sensitive")
	s := row(support)
	assert.Equal(t, "****@example.com", s[0], "humans get partial values")
	assert.Nil(t, s[1])
	r := row(reader)
	assert.Equal(t, "alice@example.com", r[0], "an exempt identity sees clear values")
	assert.Nil(t, r[1], "exemptions only cover what they select")
	anon := row(identity.Anonymous())
	assert.Equal(t, "[masked:email]", anon[0], "no kind entry: the default strategy")

	rs.Identity = reader
	_, stats := apply(t, e, rs, "alice@example.com", "k", "n")
	assert.Equal(t, ColumnStat{Column: "email", Class: "email", Rule: "pii-readers", Strategy: "clear", Source: "column-name"}, stats[0])
}

func TestExemptionOnDelegatedPrincipal(t *testing.T) {
	e := mustNew(t, &Config{Exemptions: []Exemption{{Name: "dpo", When: `principal.subject == 'dpo@corp' && identity.kind == 'agent'`}}})
	onBehalf := identity.Identity{Subject: "copilot", Kind: identity.Agent, OnBehalfOf: &identity.Identity{Subject: "dpo@corp", Kind: identity.Human}}
	rs := cols("email", "notes")
	rs.Identity = onBehalf
	row, _ := apply(t, e, rs, "alice@example.com", "mail bob@example.com")
	assert.Equal(t, []driver.Value{"alice@example.com", "mail bob@example.com"}, row)
	rs.Identity = agent
	row, _ = apply(t, e, rs, "alice@example.com", "mail bob@example.com")
	assert.Equal(t, []driver.Value{"[masked:email]", "mail [masked:email]"}, row)
}

func TestConfigErrorsNameTheRule(t *testing.T) {
	cases := []struct {
		cfg   Config
		where string
	}{
		{Config{Exemptions: []Exemption{{Name: "bad-cel", When: `'x' in identity.roles &&`}}}, `exemption "bad-cel"`},
		{Config{Exemptions: []Exemption{{Name: "not-bool", When: `identity.subject.size()`}}}, `exemption "not-bool"`},
		{Config{Exemptions: []Exemption{{Name: "empty"}}}, `exemption "empty"`},
		{Config{Rules: []Rule{{Name: "no-selector", Strategy: Redact}}}, `rule "no-selector"`},
		{Config{Rules: []Rule{{Name: "bad-when", Classes: []string{"email"}, When: "nope("}}}, `rule "bad-when"`},
		{Config{Rules: []Rule{{Name: "bad-glob", Columns: []string{"a.[b"}}}}, `rule "bad-glob"`},
		{Config{Kinds: map[string]string{"robot": Redact}}, "kinds.robot"},
		{Config{ValueScan: "some"}, "value_scan"},
		{Config{DefaultStrategy: "shuffle"}, "default_strategy"},
		{Config{Rules: []Rule{{Name: "typo", Classes: []string{"emial"}, Strategy: Hash}}}, `rule "typo"`},
		{Config{Exemptions: []Exemption{{Name: "typo2", When: "true", Classes: []string{"phones"}}}}, `exemption "typo2"`},
	}
	for _, c := range cases {
		_, err := New(&c.cfg)
		var ce *ConfigError
		require.True(t, errors.As(err, &ce), "%+v: %v", c.cfg, err)
		assert.Equal(t, c.where, ce.Where)
		assert.ErrorIs(t, err, ErrInvalidConfig)
	}
}

func TestWhenErrorKeepsMasking(t *testing.T) {
	// attributes.missing fails at evaluation: the exemption must not apply
	e := mustNew(t, &Config{Exemptions: []Exemption{{Name: "attr", When: `identity.attributes.missing == 'x'`}}})
	rs := cols("email")
	rs.Identity = reader
	row, _ := apply(t, e, rs, "alice@example.com")
	assert.Equal(t, "[masked:email]", row[0])
}

func TestLineage(t *testing.T) {
	e := mustNew(t, nil)
	users := sqlinfo.Relation{Schema: "public", Name: "users"}
	ref := func(c string) sqlinfo.ColumnRef { return sqlinfo.ColumnRef{Relation: users, Column: c} }
	stmt := &sqlinfo.Statement{Columns: []sqlinfo.OutputColumn{
		{Name: "id", Sources: []sqlinfo.ColumnRef{ref("id")}},
		{Name: "x", Sources: []sqlinfo.ColumnRef{ref("first_name")}},              // substring(first_name, 1, 2) AS x
		{Name: "lower", Sources: []sqlinfo.ColumnRef{ref("email")}},               // lower(email)
		{Name: "string_agg", Sources: []sqlinfo.ColumnRef{ref("id"), ref("ssn")}}, // string_agg(id || ssn, ',')
		{Name: "row_to_json", Sources: []sqlinfo.ColumnRef{ref("*")}},             // row_to_json(u)
	}}
	rs := ResultSet{Statement: stmt, Columns: []string{"id", "x", "lower", "string_agg", "row_to_json"}}
	row, stats := apply(t, e, rs, int64(1), "Al", "alice@example.com", "1536221234,2536221235",
		`{"id":1,"first_name":"Alice","email":"alice@example.com","ssn":"536-22-1234","plan":"pro"}`)
	assert.Equal(t, int64(1), row[0])
	assert.Equal(t, "[masked:name]", row[1])
	assert.Equal(t, "[masked:email]", row[2])
	assert.Equal(t, "[masked:ssn]", row[3])
	assert.JSONEq(t, `{"id":1,"first_name":"[masked:name]","email":"[masked:email]","ssn":"[masked:ssn]","plan":"pro"}`, row[4].(string))
	assert.Equal(t, "lineage:public.users.first_name", stats[0].Source)
}

func TestLineageWithStar(t *testing.T) {
	e := mustNew(t, &Config{Rules: []Rule{{Name: "vip", Columns: []string{"users.nickname"}, Class: "name", Strategy: Redact}}})
	users := sqlinfo.Relation{Name: "users"}
	stmt := &sqlinfo.Statement{Columns: []sqlinfo.OutputColumn{
		{Name: "n", Sources: []sqlinfo.ColumnRef{{Relation: users, Column: "id"}}},
		{Star: true, Sources: []sqlinfo.ColumnRef{{Relation: users, Column: "*"}}},
		{Name: "tail", Sources: []sqlinfo.ColumnRef{{Relation: users, Column: "email"}}},
	}}
	rs := ResultSet{Statement: stmt, Columns: []string{"n", "id", "nickname", "plan", "tail"}}
	row, _ := apply(t, e, rs, int64(1), int64(1), "Ace", "pro", "a@example.com")
	assert.Equal(t, []driver.Value{int64(1), int64(1), "[masked:name]", "pro", "[masked:email]"}, row)
}

func TestJSONCells(t *testing.T) {
	e := mustNew(t, nil)
	rs := ResultSet{Columns: []string{"doc", "profile"}, DatabaseTypes: []string{"JSONB", "JSONB"}}
	doc := `{"user": {"Email": "alice@example.com", "phones": ["+1 650 253 0000"], "age": 41},
  "note": "card 4111-1111-1111-1111 declined", "ok": true, "n": null, "tags": ["a", "b"]}`
	row, stats := apply(t, e, rs, []byte(doc), `{"address": {"street": "1 Main St", "zip": 12345}, "tier": "gold"}`)
	var got map[string]any
	require.NoError(t, json.Unmarshal(row[0].([]byte), &got))
	u := got["user"].(map[string]any)
	assert.Equal(t, "[masked:email]", u["Email"])
	assert.Equal(t, []any{"[masked:phone]"}, u["phones"])
	assert.Equal(t, float64(41), u["age"])
	assert.Equal(t, "card [masked:card] declined", got["note"])
	assert.Equal(t, true, got["ok"])
	assert.Equal(t, `{"address": {"street": "[masked:address]", "zip": 0}, "tier": "gold"}`, row[1])
	assert.NotEmpty(t, stats)
}

func TestMaskedJSONColumnKeepsStructure(t *testing.T) {
	e := mustNew(t, nil)
	rs := ResultSet{Columns: []string{"address"}, DatabaseTypes: []string{"JSON"}}
	row, _ := apply(t, e, rs, `{"street":"1 Main St","city":"Springfield","zip":12345,"geo":[1.5,2.5]}`)
	assert.JSONEq(t, `{"street":"[masked:address]","city":"[masked:address]","zip":0,"geo":[0,0]}`, row[0].(string))
}

func TestStatsCountCells(t *testing.T) {
	e := mustNew(t, nil)
	p := e.Plan(context.Background(), cols("email", "notes"))
	require.NotNil(t, p)
	for i := 0; i < 5; i++ {
		d := []driver.Value{"a@example.com", "nothing here"}
		if i%2 == 0 {
			d[1] = "write to b@example.com or c@example.org"
		}
		if i == 4 {
			d[0] = nil
		}
		p.Apply(d)
	}
	st := p.Stats()
	require.Len(t, st, 2)
	assert.Equal(t, int64(4), st[0].Cells, "NULL cells are not counted")
	assert.Equal(t, ColumnStat{Column: "notes", Class: "email", Rule: "default", Strategy: "redact", Cells: 6, Source: "value"}, st[1])
}

func TestMultipleResultSetsGetOwnPlans(t *testing.T) {
	e := mustNew(t, nil)
	p1 := e.Plan(context.Background(), cols("one"))
	p2 := e.Plan(context.Background(), cols("secret"))
	d1 := []driver.Value{"1"}
	if p1 != nil {
		p1.Apply(d1)
	}
	d2 := []driver.Value{"s3cr3t"}
	p2.Apply(d2)
	assert.Equal(t, "1", d1[0])
	assert.Equal(t, "[masked:secret]", d2[0])
	assert.True(t, strings.HasPrefix(p2.Stats()[0].Column, "secret"))
}

func TestNumbersAboutADerivedValueStayClear(t *testing.T) {
	e := mustNew(t, nil)
	users := sqlinfo.Relation{Name: "users"}
	src := func(c string) []sqlinfo.ColumnRef { return []sqlinfo.ColumnRef{{Relation: users, Column: c}} }
	stmt := &sqlinfo.Statement{Columns: []sqlinfo.OutputColumn{
		{Name: "count", Sources: src("email")},      // count(email)
		{Name: "length", Sources: src("last_name")}, // length(last_name)
		{Name: "x", Sources: src("ssn")},            // ssn + 0
		{Name: "y", Sources: src("ssn")},            // count(ssn)
		{Name: "yr", Sources: src("dob")},           // extract(year from dob)
		{Name: "ep", Sources: src("dob")},           // extract(epoch from dob)
		{Name: "ssn", Sources: src("ssn")},          // the column itself, by name
	}}
	rs := ResultSet{Statement: stmt, Columns: []string{"count", "length", "x", "y", "yr", "ep", "ssn"},
		DatabaseTypes: []string{"INT8", "INT4", "INT8", "INT8", "NUMERIC", "NUMERIC", "INT8"}}
	row, _ := apply(t, e, rs, int64(2), int64(5), int64(536221234), int64(2), []byte("1990"), []byte("642902400"), int64(12))
	assert.Equal(t, []driver.Value{int64(2), int64(5), int64(0), int64(2), []byte("1990"), []byte("000000000"), int64(0)}, row)
}

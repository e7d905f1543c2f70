package mask

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// docsExample is the configuration shown in docs/mask.md.
const docsExample = `
masking:
  default_strategy: redact
  hash_key_env: GUARD_MASK_KEY
  phone_region: US
  value_scan: all
  kinds:
    agent: hash
    human: partial
  rules:
    - name: never-show-secrets
      classes: [secret]
      strategy: "null"
    - name: ticket-notes
      columns: ["crm.tickets.internal_*"]
      class: internal
      strategy: redact
    - name: store-addresses-are-public
      columns: ["public.stores.address"]
      strategy: clear
  exemptions:
    - name: pii-readers
      when: "'pii_reader' in identity.roles"
      classes: [email, phone, name]
    - name: dpo-via-agent
      when: "principal.subject == 'dpo@example.com'"
  classes:
    - name: employee_id
      columns: ["badge number", "staff no"]
    - name: email
      columns: ["contact"]
`

func TestDocsExampleDecodesStrictly(t *testing.T) {
	var doc struct {
		Masking Config `yaml:"masking"`
	}
	require.NoError(t, yaml.UnmarshalWithOptions([]byte(docsExample), &doc, yaml.Strict()))
	t.Setenv("GUARD_MASK_KEY", "docs-example-key-0123456789abcdef")
	e, err := New(&doc.Masking)
	require.NoError(t, err)

	stores := sqlinfo.Relation{Schema: "public", Name: "stores"}
	stmt := &sqlinfo.Statement{Columns: []sqlinfo.OutputColumn{
		{Name: "address", Sources: []sqlinfo.ColumnRef{{Relation: stores, Column: "address"}}},
		{Name: "staff_no", Sources: []sqlinfo.ColumnRef{{Relation: stores, Column: "staff_no"}}},
		{Name: "contact", Sources: []sqlinfo.ColumnRef{{Relation: stores, Column: "contact"}}},
		{Name: "api_key", Sources: []sqlinfo.ColumnRef{{Relation: stores, Column: "api_key"}}},
	}}
	rs := ResultSet{Identity: identity.Identity{Subject: "sam", Kind: identity.Human}, Statement: stmt, Columns: []string{"address", "staff_no", "contact", "api_key"}}
	p := e.Plan(context.Background(), rs)
	row := []driver.Value{"1 Main St", "S-1234", "shop@example.com", "k"}
	p.Apply(row)
	assert.Equal(t, []driver.Value{"1 Main St", "*-****", "****@example.com", nil}, row)

	var bad struct {
		Masking Config `yaml:"masking"`
	}
	err = yaml.UnmarshalWithOptions([]byte("masking:\n  default_strategy: redact\n  exemption: []\n"), &bad, yaml.Strict())
	assert.Error(t, err, "unknown fields are refused")
}

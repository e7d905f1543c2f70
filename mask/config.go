package mask

// Config is the masking section of a policy file (`masking:`). The policy
// package decodes it from YAML (strictly: unknown fields are errors); New
// turns it into an Engine. The zero Config, like a nil one, masks every
// detected class for everyone with the redact strategy.
type Config struct {
	// Disabled turns masking off entirely.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`

	// DefaultStrategy is the strategy for a sensitive column that no rule and
	// no identity-kind entry decides: redact (the default), partial, hash or
	// null, or a name registered with WithStrategy.
	DefaultStrategy string `yaml:"default_strategy,omitempty" json:"default_strategy,omitempty"`

	// Kinds chooses the strategy by identity kind (human, agent, service,
	// and "anonymous" for a context without identity), e.g. agents get
	// hash tokens and humans partial values. Rules still come first.
	Kinds map[string]string `yaml:"kinds,omitempty" json:"kinds,omitempty"`

	// Rules are tried in order; the first that selects a column and whose
	// When holds decides its strategy.
	Rules []Rule `yaml:"rules,omitempty" json:"rules,omitempty"`

	// Exemptions return selected columns in clear to identities for which
	// When holds. They win over rules.
	Exemptions []Exemption `yaml:"exemptions,omitempty" json:"exemptions,omitempty"`

	// Classes adds column-name phrases, to a built-in class (name: email) or
	// to a class of your own (name: employee_id).
	Classes []ClassConfig `yaml:"classes,omitempty" json:"classes,omitempty"`

	// ValueScan says where the value detectors run as a safety net: "all"
	// (default: every text or JSON cell of a column not already masked by
	// name or lineage) or "off".
	ValueScan string `yaml:"value_scan,omitempty" json:"value_scan,omitempty"`

	// PhoneRegion is the region (ISO 3166 alpha-2) phone numbers without a
	// country code are read in; default "US".
	PhoneRegion string `yaml:"phone_region,omitempty" json:"phone_region,omitempty"`

	// HashKeyEnv names the environment variable holding the key of the hash
	// strategy. WithHashKey sets the key directly and wins. The key is
	// required as soon as any rule or kind uses hash: unkeyed tokens of a
	// small value space (birth dates, SSNs) could be reversed by brute force.
	HashKeyEnv string `yaml:"hash_key_env,omitempty" json:"hash_key_env,omitempty"`
}

// Rule chooses how selected columns are masked. A rule selects a column when
// any Columns glob matches it or its class is one of Classes; with both set,
// both must hold. Columns given in a rule are masked even when no detector
// would call them sensitive (their class is Class, or "custom").
type Rule struct {
	// Name identifies the rule in errors and in audit records.
	Name string `yaml:"name" json:"name"`
	// Columns are globs (path.Match syntax, case-insensitive) over
	// "schema.table.column", "table.column" or "column": a glob with no dot
	// matches the column name in any table.
	Columns []string `yaml:"columns,omitempty" json:"columns,omitempty"`
	// Classes select by detected class (email, card, secret, ...).
	Classes []string `yaml:"classes,omitempty" json:"classes,omitempty"`
	// Class is the class given to columns this rule selects by Columns that
	// no detector classifies.
	Class string `yaml:"class,omitempty" json:"class,omitempty"`
	// Strategy is redact, partial, hash, null, a WithStrategy name, or
	// "clear" to return the selected columns unmasked.
	Strategy string `yaml:"strategy" json:"strategy"`
	// When is an optional CEL condition over `identity` (and `principal`,
	// the end of the delegation chain), e.g. `identity.kind == 'agent'`.
	When string `yaml:"when,omitempty" json:"when,omitempty"`
}

// Exemption returns columns in clear to identities for which When holds,
// e.g. `'pii_reader' in identity.roles`. With no Columns and no Classes it
// exempts every column.
type Exemption struct {
	Name    string   `yaml:"name" json:"name"`
	When    string   `yaml:"when" json:"when"`
	Columns []string `yaml:"columns,omitempty" json:"columns,omitempty"`
	Classes []string `yaml:"classes,omitempty" json:"classes,omitempty"`
}

// ClassConfig adds column-name phrases to a class. A phrase is matched whole
// word against a column's words: "badge number" matches badge_number,
// badgeNumber, BADGE-NUMBER, badgenumber and badge_numbers, but not badge_id_number.
type ClassConfig struct {
	Name    string   `yaml:"name" json:"name"`
	Columns []string `yaml:"columns" json:"columns"`
}

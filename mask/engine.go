package mask

import (
	"fmt"
	"hash/maphash"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// Option configures New.
type Option func(*options)

type options struct {
	key    []byte
	custom map[string]Func
}

// WithHashKey sets the key of the hash strategy. It wins over
// Config.HashKeyEnv. Use at least 32 random bytes and keep it secret: whoever
// holds it can test guesses against tokens.
func WithHashKey(key []byte) Option {
	return func(o *options) { o.key = append([]byte(nil), key...) }
}

// WithStrategy registers a custom strategy under name, for rules and kinds
// to refer to.
func WithStrategy(name string, fn Func) Option {
	return func(o *options) {
		if o.custom == nil {
			o.custom = map[string]Func{}
		}
		o.custom[name] = fn
	}
}

type compiledRule struct {
	name     string
	columns  []string
	classes  map[Class]bool
	class    Class
	strategy *strategy
	when     cel.Program
}

type compiledExemption struct {
	name    string
	columns []string
	classes map[Class]bool
	when    cel.Program
}

// Engine decides what to mask in each result set. It implements Masker and
// is safe for concurrent use. Build it with New.
type Engine struct {
	disabled   bool
	names      *nameClassifier
	rules      []compiledRule
	exemptions []compiledExemption
	kinds      map[string]*strategy
	def        *strategy
	key        []byte
	scan       bool
	region     string
	hasWhen    bool // any rule or exemption has a condition to evaluate
	// condKeyed is true when every condition reads only what the decision
	// cache keys on (see readsOnlyKeyed), so decisions may be cached.
	condKeyed   bool
	condSubject bool              // some condition reads a subject: the decision cache keys on it
	kindNames   map[string]string // "kinds.<kind>", built once
	known       []Class           // every class a rule, exemption or detector can name

	mu        sync.RWMutex
	nameCache map[string]Class

	seed       maphash.Seed
	skels      *lru.Cache[skelKey, *skeleton]
	decisions  *lru.Cache[uint64, *decisionEntry]
	hashCols   func(names, types []string) uint64 // tests force collisions with it
	skelBuilds atomic.Int64                       // cache misses, for tests
}

var _ Masker = (*Engine)(nil)

// New builds an Engine from cfg. A nil cfg means the defaults: every
// detected class is masked for everyone with the redact strategy, and the
// value detectors scan every other text cell. Errors match ErrInvalidConfig
// and name the rule, exemption or field at fault.
func New(cfg *Config, opts ...Option) (*Engine, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	e := &Engine{
		disabled:  cfg.Disabled,
		names:     newNameClassifier(cfg.Classes),
		kinds:     map[string]*strategy{},
		region:    strings.ToUpper(cfg.PhoneRegion),
		nameCache: map[string]Class{},
		kindNames: map[string]string{},
		condKeyed: true,
		seed:      maphash.MakeSeed(),
	}
	e.skels, _ = lru.New[skelKey, *skeleton](skeletonCacheSize)
	e.decisions, _ = lru.New[uint64, *decisionEntry](decisionCacheSize)
	if e.region == "" {
		e.region = "US"
	}
	switch cfg.ValueScan {
	case "", "all":
		e.scan = true
	case "off":
	default:
		return nil, &ConfigError{Where: "value_scan", Err: fmt.Errorf("%q is not all or off", cfg.ValueScan)}
	}
	usesHash := false
	resolve := func(where, name string) (*strategy, error) {
		var st *strategy
		switch name {
		case Redact, "":
			st = &strategy{name: Redact, kind: sRedact}
		case Partial:
			st = &strategy{name: name, kind: sPartial}
		case Hash:
			st = &strategy{name: name, kind: sHash}
			usesHash = true
		case Null:
			st = &strategy{name: name, kind: sNull}
		case Clear:
			st = &strategy{name: name, kind: sClear}
		default:
			fn, ok := o.custom[name]
			if !ok || fn == nil {
				return nil, &ConfigError{Where: where, Err: fmt.Errorf("%w %q", ErrUnknownStrategy, name)}
			}
			st = &strategy{name: name, kind: sCustom, fn: fn}
		}
		return st, nil
	}
	var err error
	if e.def, err = resolve("default_strategy", cfg.DefaultStrategy); err != nil {
		return nil, err
	}
	for k, name := range cfg.Kinds {
		if k != "anonymous" && !identity.Kind(k).Valid() {
			return nil, &ConfigError{Where: "kinds." + k, Err: fmt.Errorf("unknown identity kind %q (human, agent, service, anonymous)", k)}
		}
		if e.kinds[k], err = resolve("kinds."+k, name); err != nil {
			return nil, err
		}
		e.kindNames[k] = "kinds." + k
	}
	for _, c := range cfg.Classes {
		if c.Name == "" {
			return nil, &ConfigError{Where: "classes", Err: fmt.Errorf("a class needs a name")}
		}
	}
	known := map[Class]bool{"custom": true}
	for c := range rank {
		known[c] = true
	}
	for _, c := range cfg.Classes {
		known[Class(strings.ToLower(c.Name))] = true
	}
	for _, r := range cfg.Rules {
		if r.Class != "" {
			known[Class(strings.ToLower(r.Class))] = true
		}
	}
	checkClasses := func(where string, cs []string) error {
		for _, c := range cs {
			if !known[Class(strings.ToLower(c))] {
				// a typo here would silently select nothing
				return &ConfigError{Where: where, Err: fmt.Errorf("unknown class %q", c)}
			}
		}
		return nil
	}
	for c := range known {
		e.known = append(e.known, c)
	}
	env, err := celEnv()
	if err != nil {
		return nil, &ConfigError{Where: "cel", Err: err}
	}
	seen := map[string]bool{}
	for i, r := range cfg.Rules {
		where := fmt.Sprintf("rule %q", r.Name)
		if r.Name == "" {
			where = fmt.Sprintf("rule #%d", i+1)
			return nil, &ConfigError{Where: where, Err: fmt.Errorf("a rule needs a name")}
		}
		if seen["r:"+r.Name] {
			return nil, &ConfigError{Where: where, Err: fmt.Errorf("duplicate rule name")}
		}
		seen["r:"+r.Name] = true
		if len(r.Columns) == 0 && len(r.Classes) == 0 {
			return nil, &ConfigError{Where: where, Err: fmt.Errorf("select columns or classes")}
		}
		if err := checkClasses(where, r.Classes); err != nil {
			return nil, err
		}
		cr := compiledRule{name: r.Name, columns: lowerGlobs(r.Columns), classes: classSet(r.Classes), class: Class(strings.ToLower(r.Class))}
		if err := checkGlobs(cr.columns); err != nil {
			return nil, &ConfigError{Where: where, Err: err}
		}
		if cr.strategy, err = resolve(where, r.Strategy); err != nil {
			return nil, err
		}
		if r.When != "" {
			var keyed, subject bool
			if cr.when, keyed, subject, err = compileWhen(env, r.When); err != nil {
				return nil, &ConfigError{Where: where, Err: err}
			}
			e.condKeyed = e.condKeyed && keyed
			e.condSubject = e.condSubject || subject
			e.hasWhen = true
		}
		e.rules = append(e.rules, cr)
	}
	for i, x := range cfg.Exemptions {
		where := fmt.Sprintf("exemption %q", x.Name)
		if x.Name == "" {
			return nil, &ConfigError{Where: fmt.Sprintf("exemption #%d", i+1), Err: fmt.Errorf("an exemption needs a name")}
		}
		if seen["x:"+x.Name] {
			return nil, &ConfigError{Where: where, Err: fmt.Errorf("duplicate exemption name")}
		}
		seen["x:"+x.Name] = true
		if strings.TrimSpace(x.When) == "" {
			return nil, &ConfigError{Where: where, Err: fmt.Errorf("an exemption needs a when condition")}
		}
		if err := checkClasses(where, x.Classes); err != nil {
			return nil, err
		}
		ce := compiledExemption{name: x.Name, columns: lowerGlobs(x.Columns), classes: classSet(x.Classes)}
		if err := checkGlobs(ce.columns); err != nil {
			return nil, &ConfigError{Where: where, Err: err}
		}
		var keyed, subject bool
		if ce.when, keyed, subject, err = compileWhen(env, x.When); err != nil {
			return nil, &ConfigError{Where: where, Err: err}
		}
		e.condKeyed = e.condKeyed && keyed
		e.condSubject = e.condSubject || subject
		e.hasWhen = true
		e.exemptions = append(e.exemptions, ce)
	}
	if usesHash {
		e.key = o.key
		if e.key == nil && cfg.HashKeyEnv != "" {
			if v := os.Getenv(cfg.HashKeyEnv); v != "" {
				e.key = []byte(v)
			}
		}
		if len(e.key) == 0 {
			return nil, &ConfigError{Where: "hash_key_env", Err: ErrNoHashKey}
		}
	}
	return e, nil
}

func lowerGlobs(gs []string) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = strings.ToLower(g)
	}
	return out
}

func checkGlobs(gs []string) error {
	for _, g := range gs {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("column glob %q: %w", g, err)
		}
	}
	return nil
}

func classSet(cs []string) map[Class]bool {
	if len(cs) == 0 {
		return nil
	}
	m := make(map[Class]bool, len(cs))
	for _, c := range cs {
		m[Class(strings.ToLower(c))] = true
	}
	return m
}

// ClassifyColumn returns the class a column (or JSON key) name marks by the
// built-in phrases and Config.Classes, or "" when the name says nothing.
func (e *Engine) ClassifyColumn(name string) Class {
	e.mu.RLock()
	c, ok := e.nameCache[name]
	e.mu.RUnlock()
	if ok {
		return c
	}
	c = e.names.classify(name)
	e.mu.Lock()
	if len(e.nameCache) > 10000 {
		// names come from schemas, so this only trips on generated aliases
		e.nameCache = map[string]Class{}
	}
	e.nameCache[name] = c
	e.mu.Unlock()
	return c
}

// colRef is one way to name a result column for glob selectors.
type colRef struct {
	schema, table, column string
}

// matchGlobs reports whether any glob selects any of refs. A glob with one
// dot is table.column, with two schema.table.column, with none the column
// alone; when a ref has no table, only globs whose table parts are "*" match.
func matchGlobs(globs []string, refs []colRef) bool {
	for _, g := range globs {
		parts := strings.Count(g, ".")
		for _, r := range refs {
			var subject string
			switch parts {
			case 0:
				subject = r.column
			case 1:
				if r.table == "" {
					if strings.HasPrefix(g, "*.") {
						subject = "*." + r.column
					} else {
						continue
					}
				} else {
					subject = r.table + "." + r.column
				}
			default:
				if r.table == "" || r.schema == "" {
					if strings.HasPrefix(g, "*.*.") {
						subject = "*.*." + r.column
					} else if r.table != "" && strings.HasPrefix(g, "*.") {
						subject = "*." + r.table + "." + r.column
					} else {
						continue
					}
				} else {
					subject = r.schema + "." + r.table + "." + r.column
				}
			}
			if ok, _ := path.Match(g, strings.ToLower(subject)); ok {
				return true
			}
		}
	}
	return false
}

// lineage returns, per result column, the source columns the statement's
// analysis says it is derived from (nil when unknown). Columns covered by an
// unexpanded `*` take the driver's column name in each starred relation.
func lineage(stmt *sqlinfo.Statement, names []string) [][]sqlinfo.ColumnRef {
	out := make([][]sqlinfo.ColumnRef, len(names))
	if stmt == nil || len(stmt.Columns) == 0 {
		return out
	}
	cols := stmt.Columns
	stars := 0
	for _, c := range cols {
		if c.Star {
			stars++
		}
	}
	if stars == 0 {
		if len(cols) != len(names) {
			return out // the analysis and the driver disagree: trust neither mapping
		}
		for i := range names {
			out[i] = cols[i].Sources
		}
		return out
	}
	// Non-star entries before the first star map from the front, after the
	// last star from the back; the middle is covered by the stars.
	first, lastStar := -1, -1
	for i, c := range cols {
		if c.Star {
			if first < 0 {
				first = i
			}
			lastStar = i
		}
	}
	tail := len(cols) - lastStar - 1
	if first+tail > len(names) {
		return out
	}
	for i := 0; i < first; i++ {
		out[i] = cols[i].Sources
	}
	for k := 0; k < tail; k++ {
		out[len(names)-tail+k] = cols[lastStar+1+k].Sources
	}
	var rels []sqlinfo.Relation
	for _, c := range cols[first : lastStar+1] {
		for _, s := range c.Sources {
			rels = append(rels, s.Relation)
		}
	}
	for i := first; i < len(names)-tail; i++ {
		for _, r := range rels {
			out[i] = append(out[i], sqlinfo.ColumnRef{Relation: r, Column: names[i]})
		}
	}
	return out
}

// exemptFor returns the active exemption that selects a column (or a value
// found in it) of class with refs.
func exemptFor(active []*compiledExemption, class Class, refs []colRef) *compiledExemption {
	for _, x := range active {
		if len(x.columns) == 0 && x.classes == nil {
			return x
		}
		if x.classes != nil && !x.classes[class] {
			continue
		}
		if len(x.columns) > 0 && !matchGlobs(x.columns, refs) {
			continue
		}
		if class == "" && len(x.columns) == 0 {
			continue
		}
		return x
	}
	return nil
}

package policy

import (
	"reflect"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// The CEL variables. They are Go structs exposed with ext.NativeTypes so the
// checker knows every field: `stmt.has_wher` fails at load, not at 3 a.m.

// Principal is one identity of a delegation chain as CEL sees it
// (`identity.on_behalf_of`, `identity.principal`, `identity.chain[i]`).
type Principal struct {
	Subject    string            `cel:"subject"`
	Kind       string            `cel:"kind"`
	Roles      []string          `cel:"roles"`
	Session    string            `cel:"session"`
	Attributes map[string]string `cel:"attributes"`
}

// IdentityVars is the CEL variable `identity`: the caller, whom it acts for
// (on_behalf_of: empty subject when nobody), the end of the delegation chain
// (principal: the caller itself when not delegated) and the whole chain.
type IdentityVars struct {
	Subject    string            `cel:"subject"`
	Kind       string            `cel:"kind"`
	Roles      []string          `cel:"roles"`
	Session    string            `cel:"session"`
	Attributes map[string]string `cel:"attributes"`
	Anonymous  bool              `cel:"anonymous"`
	Delegated  bool              `cel:"delegated"`
	OnBehalfOf Principal         `cel:"on_behalf_of"`
	Principal  Principal         `cel:"principal"`
	Chain      []Principal       `cel:"chain"`
}

// Column is one output column as CEL sees it.
type Column struct {
	Name    string   `cel:"name"`
	Sources []string `cel:"sources"`
	Star    bool     `cel:"star"`
}

// StatementVars is the CEL variable `stmt`: the facts about one statement.
// Relations are strings "schema.table", or "table" when unqualified.
type StatementVars struct {
	Text            string   `cel:"text"`
	Command         string   `cel:"command"`
	Effect          string   `cel:"effect"`
	Reads           []string `cel:"reads"`
	Writes          []string `cel:"writes"`
	Tables          []string `cel:"tables"`
	HasWhere        bool     `cel:"has_where"`
	WhereAlwaysTrue bool     `cel:"where_always_true"`
	Limit           int64    `cel:"limit"`
	Functions       []string `cel:"functions"`
	Dangers         []string `cel:"dangers"`
	Columns         []Column `cel:"columns"`
	Error           string   `cel:"error"`
	Dialect         string   `cel:"dialect"`
	Index           int      `cel:"index"`
	Count           int      `cel:"count"`
}

// RequestVars is the CEL variable `request`.
type RequestVars struct {
	Kind          string `cel:"kind"`
	InTransaction bool   `cel:"in_transaction"`
	Database      string `cel:"database"`
	Driver        string `cel:"driver"`
}

// Size bounds the load-time cost estimate assumes for variable-length input.
// They are generous: the estimate only has to reject expressions whose cost
// grows out of proportion (nested loops over lists, regexes on whole texts).
const (
	maxListSize   = 1000
	maxMapSize    = 100
	maxStringSize = 4096

	// MaxEstimatedCost is the largest estimated worst-case cost an expression
	// may have at load.
	MaxEstimatedCost = 10_000_000
	// MaxRuntimeCost stops an evaluation that runs away anyway.
	MaxRuntimeCost = 1_000_000
)

var celEnv = mustEnv()

func mustEnv() *cel.Env {
	env, err := cel.NewEnv(
		ext.NativeTypes(
			reflect.TypeFor[IdentityVars](),
			reflect.TypeFor[StatementVars](),
			reflect.TypeFor[RequestVars](),
			reflect.TypeFor[Principal](),
			reflect.TypeFor[Column](),
			ext.ParseStructTags(true),
		),
		cel.Variable("identity", cel.ObjectType("policy.IdentityVars")),
		cel.Variable("stmt", cel.ObjectType("policy.StatementVars")),
		cel.Variable("request", cel.ObjectType("policy.RequestVars")),
		cel.Variable("env", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("now", cel.TimestampType),
		cel.EnableMacroCallTracking(), // lets the prefilter unparse comprehensions
		ext.Strings(),
		ext.Sets(),
		ext.Lists(),
	)
	if err != nil {
		panic("policy: CEL environment: " + err.Error()) // a programming error, caught by any test
	}
	return env
}

// sizeEstimator gives the cost estimator bounds for inputs it cannot see.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	var s cost.SizeEstimate
	switch n.Type().Kind() {
	case types.ListKind:
		s = cost.RangedSizeEstimate(0, maxListSize)
	case types.MapKind:
		s = cost.RangedSizeEstimate(0, maxMapSize)
	case types.StringKind, types.BytesKind:
		s = cost.RangedSizeEstimate(0, maxStringSize)
	default:
		return nil
	}
	return &s
}

func (sizeEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func principalOf(id identity.Identity) Principal {
	return Principal{Subject: id.Subject, Kind: string(id.Kind), Roles: id.Roles, Session: id.Session, Attributes: id.Attributes}
}

// identityVars builds the `identity` variable.
func identityVars(id identity.Identity) *IdentityVars {
	if id.Subject == "" {
		id.Subject = identity.AnonymousSubject
	}
	v := &IdentityVars{
		Subject:    id.Subject,
		Kind:       string(id.Kind),
		Roles:      id.Roles,
		Session:    id.Session,
		Attributes: id.Attributes,
		Anonymous:  id.IsAnonymous(),
	}
	if id.OnBehalfOf == nil {
		v.Principal = principalOf(id)
		v.Chain = []Principal{v.Principal}
		return v
	}
	v.Delegated = true
	chain := id.Chain()
	v.Chain = make([]Principal, len(chain))
	for i, p := range chain {
		v.Chain[i] = principalOf(p)
	}
	v.OnBehalfOf = v.Chain[1]
	v.Principal = v.Chain[len(v.Chain)-1]
	return v
}

func relStrings(rs []sqlinfo.Relation) []string {
	if len(rs) == 0 {
		return nil
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// statementVars builds the `stmt` variable for statement i of a.
func statementVars(a *sqlinfo.Analysis, i int) *StatementVars {
	s := &a.Statements[i]
	v := &StatementVars{
		Text:            s.Text,
		Command:         s.Command,
		Effect:          string(s.Effect),
		Reads:           relStrings(s.Reads),
		Writes:          relStrings(s.Writes),
		HasWhere:        s.HasWhere,
		WhereAlwaysTrue: s.WhereAlwaysTrue,
		Limit:           s.Limit,
		Functions:       s.Functions,
		Error:           s.Error,
		Dialect:         string(a.Dialect),
		Index:           i,
		Count:           len(a.Statements),
	}
	if v.Effect == "" {
		v.Effect = string(sqlinfo.Unknown)
	}
	v.Tables = append(append(make([]string, 0, len(v.Reads)+len(v.Writes)), v.Reads...), v.Writes...)
	if len(s.Dangers) > 0 {
		v.Dangers = make([]string, len(s.Dangers))
		for j, d := range s.Dangers {
			v.Dangers[j] = string(d)
		}
	}
	if len(s.Columns) > 0 {
		v.Columns = make([]Column, len(s.Columns))
		for j, c := range s.Columns {
			col := Column{Name: c.Name, Star: c.Star}
			if len(c.Sources) > 0 {
				col.Sources = make([]string, len(c.Sources))
				for k, src := range c.Sources {
					col.Sources[k] = src.String()
				}
			}
			v.Columns[j] = col
		}
	}
	return v
}

func requestVars(r Request) *RequestVars {
	k := string(r.Kind)
	if k == "" {
		k = string(KindExec)
	}
	return &RequestVars{Kind: k, InTransaction: r.InTransaction, Database: r.Database, Driver: r.Driver}
}

// unknownAnalysis stands in when a caller passes no analysis: nothing known
// is treated as Unknown, which the baseline denies.
func unknownAnalysis(reason string) *sqlinfo.Analysis {
	return &sqlinfo.Analysis{Dialect: sqlinfo.Postgres, Statements: []sqlinfo.Statement{{Effect: sqlinfo.Unknown, Limit: -1, Error: reason}}}
}

// The bounded methods report whether a variable is within the sizes the
// load-time cost estimate assumed (maxListSize, maxMapSize, maxStringSize).

func strsBounded(ss []string) bool {
	if len(ss) > maxListSize {
		return false
	}
	for _, s := range ss {
		if len(s) > maxStringSize {
			return false
		}
	}
	return true
}

func mapBounded(m map[string]string) bool {
	if len(m) > maxMapSize {
		return false
	}
	for k, v := range m {
		if len(k) > maxStringSize || len(v) > maxStringSize {
			return false
		}
	}
	return true
}

func (p *Principal) bounded() bool {
	return len(p.Subject) <= maxStringSize && len(p.Kind) <= maxStringSize && len(p.Session) <= maxStringSize &&
		strsBounded(p.Roles) && mapBounded(p.Attributes)
}

func (v *IdentityVars) bounded() bool {
	if len(v.Chain) > maxListSize {
		return false
	}
	for i := range v.Chain {
		if !v.Chain[i].bounded() {
			return false
		}
	}
	return true // the caller itself is Chain[0]
}

func (v *RequestVars) bounded() bool {
	return len(v.Database) <= maxStringSize && len(v.Driver) <= maxStringSize
}

func (v *StatementVars) bounded() bool {
	if len(v.Text) > maxStringSize || len(v.Command) > maxStringSize || len(v.Error) > maxStringSize ||
		!strsBounded(v.Reads) || !strsBounded(v.Writes) || !strsBounded(v.Tables) ||
		!strsBounded(v.Functions) || !strsBounded(v.Dangers) || len(v.Columns) > maxListSize {
		return false
	}
	for i := range v.Columns {
		if len(v.Columns[i].Name) > maxStringSize || !strsBounded(v.Columns[i].Sources) {
			return false
		}
	}
	return true
}

package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/guardedsql/guard/mask"
)

// Mode says whether a policy's decisions are enforced or only recorded.
type Mode string

// Modes. Observe evaluates every statement and records what would have
// happened (Decision.Observed), but lets everything through: the way to try a
// new policy on production traffic before enforcing it.
const (
	Enforce Mode = "enforce"
	Observe Mode = "observe"
)

// ErrInvalid is matched (errors.Is) by every error about a policy file's
// content: YAML, unknown fields, CEL type errors, cost limits, bad effects.
var ErrInvalid = errors.New("invalid policy")

// Error is a problem in a policy file at a known place. Its message reads
// "file:line: rule "name": what is wrong" so editors and CI can jump to it.
type Error struct {
	// File is the file name given to Load or ParseFile ("<policy>" for Parse).
	File string
	// Line is the 1-based line of the problem, 0 when unknown.
	Line int
	// Column is the 1-based column, 0 when unknown.
	Column int
	// Rule names the rule the problem belongs to, empty if none.
	Rule string
	// Msg says what is wrong.
	Msg string
	// Err is the underlying error (YAML or CEL), if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q: ", e.Rule)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap lets errors.Is match ErrInvalid and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// pos is a YAML scalar remembered with the line it was written on, so errors
// found after decoding (CEL compile errors, unknown rule names) can still
// point at the file.
type pos struct {
	Value  string
	Line   int
	Column int
	set    bool
}

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (p *pos) UnmarshalYAML(n ast.Node) error {
	tk := n.GetToken()
	if tk != nil && tk.Position != nil {
		p.Line, p.Column = tk.Position.Line, tk.Position.Column
	}
	p.set = true
	switch v := n.(type) {
	case *ast.StringNode:
		p.Value = v.Value
	case *ast.LiteralNode:
		p.Value = v.Value.Value
	case *ast.NullNode:
		p.Value = ""
	case ast.ScalarNode:
		p.Value = fmt.Sprint(v.GetValue())
	default:
		return &yamlTypeError{line: p.Line, col: p.Column, msg: fmt.Sprintf("expected a string, got %s", n.Type())}
	}
	return nil
}

// yamlTypeError carries a position out of a custom unmarshaler.
type yamlTypeError struct {
	line, col int
	msg       string
}

func (e *yamlTypeError) Error() string { return e.msg }

// fileDoc is the YAML shape of a policy file.
type fileDoc struct {
	Version int               `yaml:"version"`
	Name    pos               `yaml:"name"`
	Extends pos               `yaml:"extends"`
	Disable []pos             `yaml:"disable"`
	Mode    pos               `yaml:"mode"`
	Default pos               `yaml:"default"`
	Dialect pos               `yaml:"dialect"`
	Env     map[string]string `yaml:"env"`
	Rules   []ruleDoc         `yaml:"rules"`
	Masking *mask.Config      `yaml:"masking"`
	Tests   []TestCase        `yaml:"tests"`
}

// ruleDoc is one rule as written.
type ruleDoc struct {
	Name        pos `yaml:"name"`
	Description pos `yaml:"description"`
	Match       pos `yaml:"match"`
	Effect      pos `yaml:"effect"`
	Message     pos `yaml:"message"`
	MessageExpr pos `yaml:"message_expr"`
}

// TestCase is one `tests:` entry of a policy file: given an identity, a
// statement and optionally request and environment, expect an effect and
// optionally the rule that decided.
type TestCase struct {
	// Name labels the case in reports; defaults to its SQL.
	Name string `yaml:"name"`
	// Identity is who runs the statement; empty means anonymous.
	Identity TestIdentity `yaml:"identity"`
	// SQL is the statement string, analyzed with Dialect.
	SQL string `yaml:"sql"`
	// Dialect overrides the file's dialect (default postgres).
	Dialect string `yaml:"dialect"`
	// Request describes how the statement is run; kind defaults to exec.
	Request TestRequest `yaml:"request"`
	// Env adds or overrides environment labels for this case.
	Env map[string]string `yaml:"env"`
	// Expect is the expected effect.
	Expect Effect `yaml:"expect"`
	// Rule, when set, is the rule expected to decide ("" in the file means any).
	Rule string `yaml:"rule"`

	line int
}

// UnmarshalYAML records the case's line and decodes it strictly.
func (tc *TestCase) UnmarshalYAML(n ast.Node) error {
	type plain TestCase
	var p plain
	if err := yaml.NodeToValue(n, &p, yaml.Strict()); err != nil {
		return err
	}
	*tc = TestCase(p)
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		tc.line = tk.Position.Line
	}
	return nil
}

// Line is the line of the case in its file, 0 if built in code.
func (tc *TestCase) Line() int { return tc.line }

// TestIdentity is the identity of a test case.
type TestIdentity struct {
	Subject    string            `yaml:"subject"`
	Kind       string            `yaml:"kind"`
	Roles      []string          `yaml:"roles"`
	Session    string            `yaml:"session"`
	Attributes map[string]string `yaml:"attributes"`
	OnBehalfOf *TestIdentity     `yaml:"on_behalf_of"`
}

// TestRequest is the request of a test case.
type TestRequest struct {
	Kind          string `yaml:"kind"`
	InTransaction bool   `yaml:"in_transaction"`
	Database      string `yaml:"database"`
	Driver        string `yaml:"driver"`
}

// decodeFile reads data strictly, turning YAML errors into *Error with the
// line they happened on.
func decodeFile(name string, data []byte) (doc0 *fileDoc, err error) {
	// goccy/go-yaml v1.19.2 panics on some malformed documents (found by
	// FuzzParse, e.g. a tag with no value inside a sequence); a bad file must
	// be an error, never a crash.
	defer func() {
		if r := recover(); r != nil {
			doc0, err = nil, &Error{File: name, Msg: fmt.Sprintf("malformed YAML (the parser failed: %v)", r)}
		}
	}()
	var doc fileDoc
	if err := yaml.UnmarshalWithOptions(data, &doc, yaml.Strict()); err != nil {
		return nil, yamlError(name, err)
	}
	return &doc, nil
}

func yamlError(name string, err error) error {
	e := &Error{File: name, Msg: err.Error(), Err: err}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	var te *yamlTypeError
	if errors.As(err, &te) {
		e.Msg, e.Line, e.Column = te.msg, te.line, te.col
	}
	// goccy prefixes messages with "[line:col] "; the position is already in front.
	if e.Line == 0 {
		var l, c int
		if n, _ := fmt.Sscanf(e.Msg, "[%d:%d]", &l, &c); n == 2 {
			e.Line, e.Column = l, c
		}
	}
	if i := strings.Index(e.Msg, "] "); strings.HasPrefix(e.Msg, "[") && i > 0 {
		e.Msg = e.Msg[i+2:]
	}
	if i := strings.IndexByte(e.Msg, '\n'); i > 0 {
		e.Msg = e.Msg[:i]
	}
	return e
}

package guard

import (
	"context"

	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/internal/sqlinfo"
	"github.com/guardedsql/guard/mask"
	"github.com/guardedsql/guard/policy"
	"github.com/guardedsql/guard/policy/approval"
)

// Policy decides what happens to a statement. *policy.Policy and
// *policy.Store satisfy it; tests and applications may plug in their own.
type Policy interface {
	Decide(ctx context.Context, in *policy.Input) policy.Decision
}

// Option configures a guarded driver or connector. Explicit Options win over
// DSN parameters, which win over environment variables (see README).
type Option func(*config)

// config is everything one guarded connector needs; it is fixed once the
// connector is built.
type config struct {
	dialect     sqlinfo.Dialect
	driverName  string
	database    string
	policy      Policy
	policyPath  string
	policyWatch bool
	observe     bool
	approver    approval.Approver
	masker      mask.Masker
	maskOff     bool
	maskKey     []byte
	auditor     audit.Emitter
	auditConfig map[string]string
	errorLog    func(error)
}

// WithPolicy sets the policy that decides every statement.
func WithPolicy(p Policy) Option { return func(c *config) { c.policy = p } }

// WithPolicyFile loads the policy from path and, if watch is true, reloads
// it whenever the file changes (an invalid new file is reported and the old
// policy stays in force). A file that cannot be loaded is an error at Open.
func WithPolicyFile(path string, watch bool) Option {
	return func(c *config) { c.policy = nil; c.policyPath = path; c.policyWatch = watch }
}

// WithObserveOnly records what the policy would have blocked without
// blocking it: denials and approvals are evaluated and audited, and the
// statement runs.
func WithObserveOnly(on bool) Option { return func(c *config) { c.observe = on } }

// WithApprover sets who reviews statements the policy holds for approval.
// Without one, a statement that needs approval is denied.
func WithApprover(a approval.Approver) Option { return func(c *config) { c.approver = a } }

// WithMasker sets the masker applied to every result set.
func WithMasker(m mask.Masker) Option { return func(c *config) { c.masker = m; c.maskOff = m == nil } }

// WithMaskKey sets the key of the masking hash strategy (deterministic
// HMAC-SHA256 tokens). Keep it secret and stable: tokens join only under the
// same key.
func WithMaskKey(key []byte) Option {
	return func(c *config) { c.maskKey = append([]byte(nil), key...) }
}

// WithoutMasking turns result masking off.
func WithoutMasking() Option { return func(c *config) { c.masker = nil; c.maskOff = true } }

// WithAuditor sets where audit records go. The default keeps the last
// records in memory only (see Auditor to read them).
func WithAuditor(e audit.Emitter) Option { return func(c *config) { c.auditor = e } }

// WithDialect sets the SQL grammar statements are read with: "postgres" or
// "mysql". By default it follows the wrapped driver.
func WithDialect(d string) Option { return func(c *config) { c.dialect = sqlinfo.Dialect(d) } }

// WithDatabase sets the database name recorded in audit records and seen by
// policies as request.database. By default it is read from the DSN.
func WithDatabase(name string) Option { return func(c *config) { c.database = name } }

// WithErrorLog receives errors the guard cannot return to a caller (an audit
// record that failed after its statement ran, a policy reload that failed).
func WithErrorLog(f func(error)) Option { return func(c *config) { c.errorLog = f } }

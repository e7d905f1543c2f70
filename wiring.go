package guard

import (
	"context"
	"fmt"
	"time"

	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/policy"
)

// defaultAuditKeep is how many records the default in-memory auditor keeps.
const defaultAuditKeep = 1000

// buildPolicy settles which policy decides: an explicit Option, else the
// file named by guard.policy (reloaded when it changes if guard.policy_watch
// is on), else the embedded baseline.
func (e *engine) buildPolicy() error {
	if e.cfg.policy != nil {
		return nil
	}
	if e.cfg.policyPath == "" {
		e.cfg.policy = policy.Baseline()
		return nil
	}
	store, err := policy.NewStore(e.cfg.policyPath)
	if err != nil {
		return &ConfigError{Setting: "guard.policy", Value: e.cfg.policyPath, Err: err}
	}
	e.cfg.policy = store
	e.store = store
	return nil
}

// startPolicyWatch begins reloading the policy file on change. Reloads and
// rejected files are recorded in the audit trail; a rejected file leaves the
// old policy in force.
func (e *engine) startPolicyWatch() error {
	if e.store == nil {
		return nil
	}
	e.store.OnChange(func(old, cur *policy.Policy) {
		e.emitLife(audit.KindPolicyReloaded, fmt.Sprintf("%s -> %s", old.Version(), cur.Version()))
	})
	e.emitLife(audit.KindPolicyLoaded, e.store.Policy().Version())
	if !e.cfg.policyWatch {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.closers = append(e.closers, func(context.Context) error { cancel(); return nil })
	return e.store.Watch(ctx, func(err error) {
		e.emitLife(audit.KindPolicyRejected, err.Error())
		e.cfg.errorLog(err)
	})
}

// emitLife records an event in the guard's own life.
func (e *engine) emitLife(kind audit.Kind, detail string) {
	rec := &audit.Record{Kind: kind, Time: time.Now(), Database: e.cfg.database, Driver: e.cfg.driverName, Detail: detail}
	if err := e.cfg.auditor.Emit(context.Background(), rec); err != nil {
		e.cfg.errorLog(fmt.Errorf("guard: audit record %s: %w", kind, err))
	}
}

// buildMasker settles which masker rewrites result sets.
func (e *engine) buildMasker() error {
	if e.cfg.maskOff {
		e.cfg.masker = nil
	}
	return nil
}

// buildAuditor settles where audit records go.
func (e *engine) buildAuditor() error {
	if e.cfg.auditor != nil {
		return nil
	}
	if len(e.cfg.auditConfig) > 0 {
		for k, v := range e.cfg.auditConfig {
			return &ConfigError{Setting: "guard." + k, Value: v, Err: fmt.Errorf("durable audit sinks are not supported yet")}
		}
	}
	e.cfg.auditor = audit.NewMemory(defaultAuditKeep)
	return nil
}

package guard

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/guardedsql/guard/audit"
	"github.com/guardedsql/guard/mask"
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

// buildMasker settles which masker rewrites result sets: an explicit
// Option, else the masking section of the policy (the zero-setup default
// when it has none), rebuilt whenever a policy file is reloaded.
func (e *engine) buildMasker() error {
	if e.cfg.maskOff {
		e.cfg.masker = nil
		return nil
	}
	if e.cfg.masker != nil {
		return nil
	}
	var opts []mask.Option
	if e.cfg.maskKey != nil {
		opts = append(opts, mask.WithHashKey(e.cfg.maskKey))
	}
	eng, err := mask.New(maskingOf(e.cfg.policy), opts...)
	if err != nil {
		setting := "guard.policy"
		if e.cfg.policyPath == "" {
			setting = "masking"
		}
		return &ConfigError{Setting: setting, Value: e.cfg.policyPath, Err: err}
	}
	if e.store == nil {
		e.cfg.masker = eng
		return nil
	}
	rm := &reloadingMasker{}
	rm.cur.Store(eng)
	e.store.OnChange(func(_, cur *policy.Policy) {
		next, err := mask.New(cur.Masking(), opts...)
		if err != nil {
			// The policy loaded, so its masking section compiled once; keep
			// masking with the previous rules rather than none.
			e.cfg.errorLog(fmt.Errorf("guard: masking of reloaded policy %s: %w", cur.Version(), err))
			return
		}
		rm.cur.Store(next)
	})
	e.cfg.masker = rm
	return nil
}

// maskingOf returns the masking section of a policy, when it has one.
func maskingOf(p Policy) *mask.Config {
	switch p := p.(type) {
	case *policy.Policy:
		return p.Masking()
	case *policy.Store:
		return p.Policy().Masking()
	}
	return nil
}

// reloadingMasker follows the masking section of a reloaded policy file.
type reloadingMasker struct{ cur atomic.Pointer[mask.Engine] }

func (m *reloadingMasker) Plan(ctx context.Context, rs mask.ResultSet) mask.Plan {
	return m.cur.Load().Plan(ctx, rs)
}

// buildAuditor settles where audit records go: an explicit Option, else a
// durable audit.Logger when any guard.audit.* setting is given, else a
// bounded in-memory ring (nothing leaves the process: configure a sink for
// production).
func (e *engine) buildAuditor() error {
	if e.cfg.auditor != nil {
		return nil
	}
	if len(e.cfg.auditConfig) == 0 {
		e.cfg.auditor = audit.NewMemory(defaultAuditKeep)
		return nil
	}
	acfg, err := audit.ConfigFromMap(e.cfg.auditConfig)
	if err != nil {
		var se *audit.SettingError
		if errors.As(err, &se) {
			return &ConfigError{Setting: "guard." + se.Key, Value: se.Value, Err: se.Err}
		}
		return &ConfigError{Setting: "guard.audit", Err: err}
	}
	if acfg.SpoolDir == "" {
		return &ConfigError{Setting: "guard.audit.spool_dir", Err: errors.New("required: every audit sink delivers from the durable spool")}
	}
	if acfg.OnError == nil {
		acfg.OnError = func(err error) { e.cfg.errorLog(err) }
	}
	logger, err := audit.New(acfg)
	if err != nil {
		return &ConfigError{Setting: "guard.audit", Err: err}
	}
	e.cfg.auditor = logger
	e.closers = append(e.closers, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, auditDrainTimeout)
		defer cancel()
		return logger.Close(ctx)
	})
	return nil
}

// auditDrainTimeout bounds how long closing the DB waits for the audit
// trail to drain; what is left stays in the spool for the next start.
const auditDrainTimeout = 10 * time.Second

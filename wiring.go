package guard

import (
	"context"
	"fmt"

	"github.com/guardedsql/guard/audit"
)

// defaultAuditKeep is how many records the default in-memory auditor keeps.
const defaultAuditKeep = 1000

// buildPolicy settles which policy decides.
func (e *engine) buildPolicy() error {
	if e.cfg.policy != nil {
		return nil
	}
	if e.cfg.policyPath != "" {
		return &ConfigError{Setting: "guard.policy", Value: e.cfg.policyPath, Err: fmt.Errorf("policy files are not supported yet")}
	}
	e.cfg.policy = allowAll{}
	return nil
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

var _ = context.Background

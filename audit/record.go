package audit

import (
	"context"
	"sync"
	"time"
)

// SchemaVersion is the version of Record written into every record.
const SchemaVersion = 1

// Kind says whether a record is about a statement or about the guard itself.
type Kind string

// Record kinds.
const (
	KindStatement      Kind = "statement"
	KindStart          Kind = "guard.start"
	KindStop           Kind = "guard.stop"
	KindPolicyLoaded   Kind = "policy.loaded"
	KindPolicyReloaded Kind = "policy.reloaded"
	KindPolicyRejected Kind = "policy.rejected"
	KindSpoolFull      Kind = "spool.full"
	KindDelivery       Kind = "delivery.resumed"
	// KindCheckpoint records carry an Ed25519 signature over the chain so
	// far (see Checkpoint).
	KindCheckpoint Kind = "chain.checkpoint"
	// KindSpoolCorrupt is written when recovery found unreadable bytes in
	// the middle of a spool segment (not a torn tail).
	KindSpoolCorrupt Kind = "spool.corrupt"
)

// Principal is one identity in a record.
type Principal struct {
	Subject    string            `json:"subject"`
	Kind       string            `json:"kind,omitempty"`
	Roles      []string          `json:"roles,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Decision is the policy outcome recorded for a statement.
type Decision struct {
	Effect     string `json:"effect"`
	Rule       string `json:"rule,omitempty"`
	Message    string `json:"message,omitempty"`
	Policy     string `json:"policy,omitempty"`
	Observed   bool   `json:"observed,omitempty"`
	ApprovalID string `json:"approval_id,omitempty"`
	Reviewer   string `json:"reviewer,omitempty"`
}

// Outcome is what happened when the statement ran (or did not).
type Outcome struct {
	// Status is "ok", "error", "denied" or "cancelled".
	Status       string `json:"status"`
	RowsReturned int64  `json:"rows_returned,omitempty"`
	RowsAffected int64  `json:"rows_affected,omitempty"`
	SQLState     string `json:"sqlstate,omitempty"`
	Error        string `json:"error,omitempty"`
}

// MaskedColumn records one masked column of a result set.
type MaskedColumn struct {
	Column   string `json:"column"`
	Class    string `json:"class,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Strategy string `json:"strategy,omitempty"`
	Cells    int64  `json:"cells"`
}

// Chain holds the tamper-evidence fields.
type Chain struct {
	ID       string `json:"id"`
	Sequence uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// Checkpoint is the signed part of a KindCheckpoint record. It vouches for
// the record with sequence Seq and hash Hash in the same chain, and through
// the hash links for every record before it.
type Checkpoint struct {
	// Seq and Hash name the last record covered.
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// KeyID is the first 8 bytes of SHA-256 over the public key, in hex.
	KeyID string `json:"key_id"`
	// Signature is Ed25519 over CheckpointMessage(chain id, Seq, Hash),
	// base64 (standard encoding).
	Signature string `json:"sig"`
}

// Record is one audit record: one per statement attempt, or one per event in
// the guard's own life.
type Record struct {
	Version    int           `json:"v"`
	ID         string        `json:"id"`
	Kind       Kind          `json:"kind"`
	Time       time.Time     `json:"time"`
	Duration   time.Duration `json:"duration_ns,omitempty"`
	Identity   *Principal    `json:"identity,omitempty"`
	OnBehalfOf []Principal   `json:"on_behalf_of,omitempty"`
	Session    string        `json:"session,omitempty"`
	Database   string        `json:"database,omitempty"`
	Driver     string        `json:"driver,omitempty"`
	// Request is query, exec or prepare.
	Request   string `json:"request,omitempty"`
	InTx      bool   `json:"in_tx,omitempty"`
	Statement string `json:"statement,omitempty"`
	// StatementLen is the statement's length in bytes when Statement was
	// cut to Config.MaxStatementBytes; 0 when it is whole.
	StatementLen int            `json:"statement_len,omitempty"`
	Fingerprint  string         `json:"fingerprint,omitempty"`
	Command      string         `json:"command,omitempty"`
	Effect       string         `json:"effect,omitempty"`
	Objects      []string       `json:"objects,omitempty"`
	Dangers      []string       `json:"dangers,omitempty"`
	Decision     *Decision      `json:"decision,omitempty"`
	Outcome      *Outcome       `json:"outcome,omitempty"`
	Masked       []MaskedColumn `json:"masked,omitempty"`
	// Detail carries free text for lifecycle records.
	Detail string `json:"detail,omitempty"`
	// Checkpoint is set on KindCheckpoint records only.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// Chain must stay the last field: the canonical encoding relies on it.
	Chain Chain `json:"chain"`
}

// Emitter accepts audit records. Emit must not keep rec after it returns
// unless it copies it; the guard may reuse nothing in it, but callers may.
type Emitter interface {
	Emit(ctx context.Context, rec *Record) error
}

// Memory is an Emitter that keeps records in memory, for tests and for the
// default configuration when no durable sink is set up. With a bound it is a
// ring: the oldest records make room for new ones, at constant cost.
type Memory struct {
	mu      sync.Mutex
	records []Record
	next    int // ring write position once full
	max     int
}

// NewMemory returns a Memory that keeps the last max records (0: unbounded).
func NewMemory(max int) *Memory { return &Memory{max: max} }

// Emit stores a copy of rec.
func (m *Memory) Emit(_ context.Context, rec *Record) error {
	m.mu.Lock()
	if m.max <= 0 || len(m.records) < m.max {
		m.records = append(m.records, *rec)
	} else {
		m.records[m.next] = *rec
		m.next = (m.next + 1) % m.max
	}
	m.mu.Unlock()
	return nil
}

// Records returns a copy of the stored records, oldest first.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Record, 0, len(m.records))
	out = append(out, m.records[m.next:]...)
	return append(out, m.records[:m.next]...)
}

// Reset forgets every stored record.
func (m *Memory) Reset() {
	m.mu.Lock()
	m.records, m.next = nil, 0
	m.mu.Unlock()
}

package mask

import (
	"context"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// A plan is built in three layers so that a statement run again costs a
// cache lookup, not a classification:
//
//   - skeleton: what the result set's shape alone decides (per column the
//     class from its name and lineage, the lineage references rules match,
//     the database type's shape). Cached per (lineage, column names,
//     database types).
//   - decision: what the identity decides (the kind's strategy, which
//     rules' `when` and which exemptions hold). Evaluated per call, or
//     cached per identity when every condition provably reads only what
//     the cache keys on.
//   - template: a skeleton resolved under one decision: the strategy and
//     rule of every column. Cached on the skeleton per decision.
//
// A Plan is then a template plus this result set's counters.

const (
	skeletonCacheSize = 2048
	decisionCacheSize = 1024
	// maxVariants bounds the templates kept per skeleton: one per distinct
	// decision, which in practice is one per identity kind and role set.
	maxVariants = 16
	// maxCondBits is how many rules and exemptions a decision key holds.
	maxCondBits = 128
)

// skelKey finds a skeleton. lin is the first element of the statement's
// lineage slice: the analyzer shares one lineage array among all strings of
// a shape (the same statement with other literals), and while the key holds
// the pointer the array cannot be freed and its address reused. A
// Statement's Columns are read-only (see ResultSet.Statement), so the same
// array means the same lineage. h hashes the column names and database
// types; an entry is used only when they compare equal, so a hash
// collision costs a rebuild, never another result set's plan.
type skelKey struct {
	lin  *sqlinfo.OutputColumn
	nlin int
	h    uint64
}

// skeleton is the identity-independent part of the plan of one result set
// shape. Immutable once built, except for the variants list.
type skeleton struct {
	lin   []sqlinfo.OutputColumn
	names []string
	types []string
	cols  []skelCol
	// inert is true when no identity can need anything masked here: no
	// column is classified, none is scanned, no rule glob selects one.
	inert bool

	mu       sync.Mutex // serialises writers of variants
	variants atomic.Pointer[[]*template]
}

type skelCol struct {
	name  string
	shape shape
	class Class
	via   string
	refs  []colRef
	// wholeRow are the relations a whole-row reference (row_to_json(u))
	// brings in: JSON keys in the cell are their columns.
	wholeRow []sqlinfo.Relation
}

func (sk *skeleton) matches(lin []sqlinfo.OutputColumn, names, types []string) bool {
	if len(sk.lin) != len(lin) || (len(lin) > 0 && &sk.lin[0] != &lin[0]) {
		return false
	}
	return slices.Equal(sk.names, names) && slices.Equal(sk.types, types)
}

// decision is what the identity decides about a plan. It is comparable, and
// two equal decisions resolve a skeleton to the same template.
type decision struct {
	kind     *strategy
	kindName string
	// bits: bit i is rule i's `when`, bit len(rules)+j exemption j's.
	bits [maxCondBits / 64]uint64
	// more holds the conditions instead when there are more than
	// maxCondBits; such decisions are not cached.
	more *[]bool
}

func (d *decision) on(i int) bool {
	if d.more != nil {
		return (*d.more)[i]
	}
	return d.bits[i/64]&(1<<(i%64)) != 0
}

func (d *decision) set(i int, v bool) {
	if d.more != nil {
		(*d.more)[i] = v
		return
	}
	if v {
		d.bits[i/64] |= 1 << (i % 64)
	} else {
		d.bits[i/64] &^= 1 << (i % 64)
	}
}

// decisionEntry is a cached evaluation of every condition for identities
// that agree on what the conditions read.
type decisionEntry struct {
	id, pr condView
	bits   [maxCondBits / 64]uint64
}

// condView is what a cacheable condition may read of an identity. subject
// is kept only when some condition reads it (e.withSubject), so that
// conditions over kind and roles share one entry among all subjects.
type condView struct {
	kind    identity.Kind
	anon    bool
	subject string
	roles   []string
}

func (e *Engine) viewOf(id identity.Identity) condView {
	v := condView{kind: id.Kind, anon: id.IsAnonymous(), roles: id.Roles}
	if e.condSubject {
		v.subject = id.Subject
	}
	return v
}

func (v condView) equal(w condView) bool {
	return v.kind == w.kind && v.anon == w.anon && v.subject == w.subject && slices.Equal(v.roles, w.roles)
}

func (v condView) hash(h *maphash.Hash) {
	h.WriteString(string(v.kind))
	if v.anon {
		h.WriteByte(1)
	} else {
		h.WriteByte(0)
	}
	h.WriteString(v.subject)
	h.WriteByte(0)
	for _, r := range v.roles {
		h.WriteString(r)
		h.WriteByte(0)
	}
	h.WriteByte(0xff)
}

// condFields are the identity fields a condition may read and still be
// cached per identity: the decision cache keys on exactly these.
var condFields = map[string]bool{"kind": true, "roles": true, "anonymous": true, "subject": true}

// readsOnlyKeyed reports whether the checked expression reads `identity`
// and `principal` only through condFields, and whether it reads a subject.
// Every occurrence of either name must be the operand of a field selection
// of one of them; anything else (indexing, passing the map whole, a field
// such as session, attributes or on_behalf_of, a comprehension variable of
// that name) makes keyed false.
func readsOnlyKeyed(ast *cel.Ast) (keyed, subject bool) {
	idents, selects := 0, 0
	celast.PreOrderVisit(ast.NativeRep().Expr(), celast.NewExprVisitor(func(x celast.Expr) {
		switch x.Kind() {
		case celast.IdentKind:
			if n := x.AsIdent(); n == "identity" || n == "principal" {
				idents++
			}
		case celast.SelectKind:
			s := x.AsSelect()
			op := s.Operand()
			if op.Kind() == celast.IdentKind && (op.AsIdent() == "identity" || op.AsIdent() == "principal") && condFields[s.FieldName()] {
				selects++
				subject = subject || s.FieldName() == "subject"
			}
		}
	}))
	return idents == selects, subject
}

// Plan builds the masking plan of one result set: which columns are masked,
// with which strategy, and which are scanned by the value detectors. Rule and
// exemption conditions are evaluated here, once. It returns nil when nothing
// in the result set can need masking.
//
// A repeated statement costs a cache lookup: what the statement's shape
// decides is cached per lineage, column names and database types, and what
// the identity decides is resolved against it once per distinct decision.
func (e *Engine) Plan(ctx context.Context, rs ResultSet) Plan {
	if e == nil || e.disabled || len(rs.Columns) == 0 {
		return nil
	}
	sk := e.skeletonFor(rs)
	if sk.inert {
		return nil
	}
	d := e.decide(rs.Identity)
	t := sk.templateFor(e, &d)
	if t.empty {
		return nil
	}
	p := &plan{t: t, m: masker{key: e.key}, region: e.region}
	if n := len(t.stats); n <= len(p.inlSkips) {
		p.skips = p.inlSkips[:n]
	} else {
		p.skips = make([]atomic.Int64, n)
	}
	if n := len(t.scans); n > 0 {
		if n <= len(p.inlScans) {
			p.scans = p.inlScans[:n]
		} else {
			p.scans = make([]scanState, n)
		}
		for i, st := range t.scans {
			p.scans[i] = scanState{t: st, p: p}
		}
	}
	return p
}

func (e *Engine) hashColumns(names, types []string) uint64 {
	if e.hashCols != nil {
		return e.hashCols(names, types)
	}
	var h maphash.Hash
	h.SetSeed(e.seed)
	for _, n := range names {
		h.WriteString(n)
		h.WriteByte(0)
	}
	h.WriteByte(0xff)
	for _, t := range types {
		h.WriteString(t)
		h.WriteByte(0)
	}
	return h.Sum64()
}

func (e *Engine) skeletonFor(rs ResultSet) *skeleton {
	var lin []sqlinfo.OutputColumn
	if rs.Statement != nil {
		lin = rs.Statement.Columns
	}
	k := skelKey{nlin: len(lin), h: e.hashColumns(rs.Columns, rs.DatabaseTypes)}
	if len(lin) > 0 {
		k.lin = &lin[0]
	}
	if sk, ok := e.skels.Get(k); ok && sk.matches(lin, rs.Columns, rs.DatabaseTypes) {
		return sk
	}
	sk := e.buildSkeleton(rs, lin)
	e.skels.Add(k, sk)
	return sk
}

func (e *Engine) buildSkeleton(rs ResultSet, lin []sqlinfo.OutputColumn) *skeleton {
	e.skelBuilds.Add(1)
	sk := &skeleton{lin: lin, names: slices.Clone(rs.Columns), types: slices.Clone(rs.DatabaseTypes), cols: make([]skelCol, len(rs.Columns)), inert: true}
	src := lineage(rs.Statement, rs.Columns)
	for i, name := range rs.Columns {
		c := &sk.cols[i]
		c.name, c.shape = name, shapeUnknown
		if i < len(rs.DatabaseTypes) {
			c.shape = shapeOf(rs.DatabaseTypes[i])
		}
		c.refs = []colRef{{column: strings.ToLower(name)}}
		c.class, c.via = e.ClassifyColumn(name), "column-name"
		for _, s := range src[i] {
			if s.Column == "*" {
				c.wholeRow = append(c.wholeRow, s.Relation)
				continue
			}
			c.refs = append(c.refs, colRef{schema: strings.ToLower(s.Relation.Schema), table: strings.ToLower(s.Relation.Name), column: strings.ToLower(s.Column)})
			if cl := e.ClassifyColumn(s.Column); moreSensitive(cl, c.class) {
				c.class, c.via = cl, "lineage:"+s.String()
			}
		}
		if c.class != "" || e.scans(c.shape) {
			sk.inert = false
			continue
		}
		for _, r := range e.rules {
			if len(r.columns) > 0 && matchGlobs(r.columns, c.refs) {
				sk.inert = false // a rule may make it sensitive for someone
				break
			}
		}
	}
	return sk
}

// scans reports whether the value detectors read a column of shape sh.
// Binary columns are not scanned: rewriting a span would corrupt a file.
func (e *Engine) scans(sh shape) bool {
	return e.scan && sh != shapeNumber && sh != shapeTime && sh != shapeBool && sh != shapeUUID && sh != shapeBinary
}

// decide evaluates what the identity decides: the kind's strategy and every
// rule's and exemption's condition.
func (e *Engine) decide(id identity.Identity) decision {
	k := string(id.Kind)
	if id.IsAnonymous() {
		k = "anonymous"
	}
	d := decision{kind: e.def, kindName: "default"}
	if st, ok := e.kinds[k]; ok {
		d.kind, d.kindName = st, e.kindNames[k]
	}
	n := len(e.rules) + len(e.exemptions)
	if n > maxCondBits {
		more := make([]bool, n)
		d.more = &more
	}
	if !e.hasWhen {
		for i := range e.rules {
			d.set(i, true)
		}
		return d
	}
	var h uint64
	var iv, pv condView
	if e.condKeyed && d.more == nil {
		pr := id.Principal()
		iv, pv = e.viewOf(id), e.viewOf(pr)
		var mh maphash.Hash
		mh.SetSeed(e.seed)
		iv.hash(&mh)
		pv.hash(&mh)
		h = mh.Sum64()
		if x, ok := e.decisions.Get(h); ok && x.id.equal(iv) && x.pr.equal(pv) {
			d.bits = x.bits
			return d
		}
	}
	act := map[string]any{"identity": identityMap(id, 0), "principal": identityMap(id.Principal(), 0)}
	for i, r := range e.rules {
		d.set(i, evalWhen(r.when, act))
	}
	for j := range e.exemptions {
		d.set(len(e.rules)+j, evalWhen(e.exemptions[j].when, act))
	}
	if e.condKeyed && d.more == nil {
		iv.roles, pv.roles = slices.Clone(iv.roles), slices.Clone(pv.roles)
		e.decisions.Add(h, &decisionEntry{id: iv, pr: pv, bits: d.bits})
	}
	return d
}

// templateFor returns the skeleton resolved under d, cached per decision.
func (sk *skeleton) templateFor(e *Engine, d *decision) *template {
	if d.more == nil {
		if vs := sk.variants.Load(); vs != nil {
			for _, t := range *vs {
				if t.d == *d {
					return t
				}
			}
		}
	}
	t := e.buildTemplate(sk, d)
	if d.more != nil {
		return t
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	var cur []*template
	if vs := sk.variants.Load(); vs != nil {
		cur = *vs
	}
	for _, x := range cur {
		if x.d == *d {
			return x // another goroutine built it first
		}
	}
	if len(cur) < maxVariants {
		next := append(slices.Clip(cur), t)
		sk.variants.Store(&next)
	}
	return t
}

// template is a skeleton resolved under one decision. Immutable: plans of
// many result sets and goroutines share it.
type template struct {
	d     decision
	empty bool
	cols  []colPlan
	stats []ColumnStat // the rows Stats starts from; cols index into it
	// counted[i] is true when a column of cols counts into stats[i]
	// (false for columns returned in clear)
	counted []bool
	scans   []*scanTmpl
}

// scanTmpl is a scanned column under one decision: how each class a
// detector or JSON key may find in it is masked.
type scanTmpl struct {
	idx      int
	column   string
	byClass  map[Class]scanClass
	slow     func(Class) scanClass
	keyClass func(string) Class
}

func (st *scanTmpl) resolve(c Class) scanClass {
	if x, ok := st.byClass[c]; ok {
		return x
	}
	return st.slow(c)
}

func (e *Engine) buildTemplate(sk *skeleton, d *decision) *template {
	t := &template{d: *d}
	if d.more != nil {
		t.d.more = nil // not kept: the template is not cached
	}
	var exOn []*compiledExemption
	for j := range e.exemptions {
		if d.on(len(e.rules) + j) {
			exOn = append(exOn, &e.exemptions[j])
		}
	}
	for i := range sk.cols {
		col := &sk.cols[i]
		class, via, refs := col.class, col.via, col.refs
		// an exemption for this column (by glob or class) returns it in clear
		if ex := exemptFor(exOn, class, refs); ex != nil {
			if class != "" {
				t.stats = append(t.stats, ColumnStat{Column: col.name, Class: string(class), Rule: ex.name, Strategy: Clear, Source: via})
			}
			continue
		}
		var st *strategy
		rule := ""
		for ri, r := range e.rules {
			if !d.on(ri) {
				continue
			}
			if len(r.columns) > 0 && !matchGlobs(r.columns, refs) {
				continue
			}
			if r.classes != nil && !r.classes[class] {
				continue
			}
			if class == "" {
				if len(r.columns) == 0 {
					continue
				}
				class, via = r.class, "rule"
				if class == "" {
					class = "custom"
				}
			}
			st, rule = r.strategy, r.name
			break
		}
		if class != "" {
			if st == nil {
				st, rule = d.kind, d.kindName
			}
			t.stats = append(t.stats, ColumnStat{Column: col.name, Class: string(class), Rule: rule, Strategy: st.name, Source: via})
			if st.kind != sClear {
				t.cols = append(t.cols, colPlan{idx: i, class: class, strategy: st, shape: col.shape, stat: len(t.stats) - 1, derived: strings.HasPrefix(via, "lineage:")})
			}
			continue
		}
		if !e.scans(col.shape) {
			continue
		}
		t.scans = append(t.scans, e.scanTemplate(i, col, d, exOn))
	}
	t.counted = make([]bool, len(t.stats))
	for _, c := range t.cols {
		t.counted[c.stat] = true
	}
	t.empty = len(t.cols) == 0 && len(t.scans) == 0 && len(t.stats) == 0
	return t
}

// scanTemplate resolves, for a scanned column, the strategy of each class a
// detector or JSON key may find in it.
func (e *Engine) scanTemplate(i int, col *skelCol, d *decision, exOn []*compiledExemption) *scanTmpl {
	refs := col.refs
	rulesOn := make([]bool, len(e.rules))
	for ri := range e.rules {
		rulesOn[ri] = d.on(ri)
	}
	kind, kindName := d.kind, d.kindName
	st := &scanTmpl{idx: i, column: col.name}
	st.slow = func(c Class) scanClass {
		x := scanClass{strategy: kind, rule: kindName}
		if exemptFor(exOn, c, refs) != nil {
			x.strategy, x.rule = &strategy{name: Clear, kind: sClear}, "exemption"
			return x
		}
		for ri, r := range e.rules {
			if rulesOn[ri] && r.classes != nil && r.classes[c] && (len(r.columns) == 0 || matchGlobs(r.columns, refs)) {
				x.strategy, x.rule = r.strategy, r.name
				break
			}
		}
		return x
	}
	st.byClass = make(map[Class]scanClass, len(e.known))
	for _, c := range e.known {
		st.byClass[c] = st.slow(c)
	}
	wholeRow := col.wholeRow
	st.keyClass = func(key string) Class {
		if c := e.ClassifyColumn(key); c != "" {
			return c
		}
		if len(wholeRow) > 0 {
			// row_to_json(u) and kin: keys are u's columns, so rules naming them apply
			var krefs []colRef
			for _, r := range wholeRow {
				krefs = append(krefs, colRef{schema: strings.ToLower(r.Schema), table: strings.ToLower(r.Name), column: strings.ToLower(key)})
			}
			for ri, r := range e.rules {
				if rulesOn[ri] && len(r.columns) > 0 && r.classes == nil && matchGlobs(r.columns, krefs) {
					if r.class != "" {
						return r.class
					}
					return "custom"
				}
			}
		}
		return ""
	}
	return st
}

package mask

import (
	"database/sql/driver"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// colStat is a ColumnStat whose count may grow while Stats reads it.
type colStat struct {
	ColumnStat
	cells atomic.Int64
}

// colPlan masks every cell of a column classified by name, lineage or rule.
type colPlan struct {
	idx      int
	class    Class
	strategy *strategy
	shape    shape
	stat     int // index into the template's stats and the plan's cells
	// derived is true when only the lineage, not the column's own name,
	// marks it: count(email) and length(name) are numbers about the value.
	derived bool
}

// numberAbout reports whether v, in a column derived from a class, is a
// number about the value (a count, a length, a year) rather than the value
// itself. Numbers derived from text classes never carry the value; numbers
// derived from numeric identifiers do when they are as long as one.
func numberAbout(class Class, sh shape, v driver.Value) bool {
	var n float64
	switch x := v.(type) {
	case int64:
		n = float64(x)
	case float64:
		n = x
	case string:
		if sh != shapeNumber {
			return false
		}
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return false
		}
		n = f
	case []byte:
		if sh != shapeNumber {
			return false
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return false
		}
		n = f
	default:
		return false
	}
	if n < 0 {
		n = -n
	}
	switch class {
	case Email, Name, Address, Secret, IPAddress:
		return true
	case SSN, Phone, Card, IBAN:
		return n < 1_000_000
	case BirthDate:
		return n < 10_000 // a year of birth is what partial shows anyway
	}
	return false // classes of your own: mask, we cannot know
}

// scanClass is how values of one class found in a scanned column are
// masked: the strategy and the rule (or kind, or exemption) that chose it.
type scanClass struct {
	strategy *strategy
	rule     string
}

// scanState is the per-result-set part of a scanned column: the stats of
// the classes found in it so far.
type scanState struct {
	t     *scanTmpl
	p     *plan
	stats map[Class]*colStat
}

// plan is the Plan the Engine builds for one result set: a shared,
// immutable template plus the counters and hashing state of this result set.
type plan struct {
	t      *template
	m      masker
	region string
	// Cells masked in column stat i are rows - skips[i]: one atomic add
	// per row instead of one per masked cell (NULLs and numbers about a
	// value, the skips, are the rare case). Stats may run concurrently.
	rows  atomic.Int64
	skips []atomic.Int64 // per t.stats
	scans []scanState    // per t.scans

	mu    sync.Mutex
	found []*colStat // classes the value detectors found, in order

	// most result sets have few masked and scanned columns: one allocation
	inlSkips [4]atomic.Int64
	inlScans [2]scanState
}

// Apply masks one row in place in dest (it replaces values; it never writes
// into a []byte the driver returned). It must not be called concurrently
// with itself; Stats may be called from any goroutine.
func (p *plan) Apply(dest []driver.Value) {
	cols := p.t.cols
	for i := range cols {
		c := &cols[i]
		if c.idx >= len(dest) || c.derived && numberAbout(c.class, c.shape, dest[c.idx]) {
			p.skips[c.stat].Add(1)
			continue
		}
		if v, ok := p.m.value(c.strategy, c.class, c.shape, dest[c.idx]); ok {
			dest[c.idx] = v
		} else {
			p.skips[c.stat].Add(1)
		}
	}
	if len(cols) > 0 {
		p.rows.Add(1)
	}
	for i := range p.scans {
		sc := &p.scans[i]
		idx := sc.t.idx
		if idx >= len(dest) {
			continue
		}
		switch v := dest[idx].(type) {
		case string:
			if out, ok := sc.text(v); ok {
				dest[idx] = out
			}
		case []byte:
			if len(v) == 0 {
				continue
			}
			// read the driver's bytes without copying; a masked result is a new slice
			if out, ok := sc.text(unsafe.String(&v[0], len(v))); ok {
				dest[idx] = []byte(out)
			}
		}
	}
}

func (sc *scanState) strategyFor(c Class) *strategy { return sc.t.resolve(c).strategy }

func (sc *scanState) count(c Class, source string) {
	s := sc.stats[c]
	if s == nil {
		x := sc.t.resolve(c)
		s = &colStat{ColumnStat: ColumnStat{Column: sc.t.column, Class: string(c), Rule: x.rule, Strategy: x.strategy.name, Source: source}}
		if sc.stats == nil {
			sc.stats = map[Class]*colStat{}
		}
		sc.stats[c] = s
		sc.p.mu.Lock()
		sc.p.found = append(sc.p.found, s)
		sc.p.mu.Unlock()
	}
	s.cells.Add(1)
}

// text returns the masked text and true when anything in s was masked. The
// result never aliases s.
func (sc *scanState) text(s string) (string, bool) {
	// Every detector needs at least 10 bytes except email, which needs an '@':
	// short codes and words leave here without a scan.
	if len(s) < 10 && strings.IndexByte(s, '@') < 0 {
		return "", false
	}
	if len(s) > 1 && (s[0] == '{' || s[0] == '[') {
		hit := false
		w := jsonWalker{s: s, m: &sc.p.m, keyClass: sc.t.keyClass, strategyFor: sc.strategyFor, region: sc.p.region,
			onMask: func(c Class) { hit = true; sc.count(c, "json") }}
		if out, ok := w.walk(nil, ""); ok {
			if !hit {
				return "", false
			}
			return out, true
		}
	}
	found := findAll(nil, s, sc.p.region)
	if len(found) == 0 {
		return "", false
	}
	hit := false
	out := maskSpans(&sc.p.m, s, found, sc.strategyFor, func(c Class) { hit = true; sc.count(c, "value") })
	if !hit {
		return "", false
	}
	return out, true
}

// Stats reports, per masked column, the class, the deciding rule, the
// strategy and the cells rewritten so far; columns returned in clear by an
// exemption or a clear rule appear with strategy "clear".
func (p *plan) Stats() []ColumnStat {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ColumnStat, 0, len(p.t.stats)+len(p.found))
	// rows before skips: a row being applied meanwhile can only make the
	// count one low, never count a cell twice
	rows := p.rows.Load()
	for i, s := range p.t.stats {
		if p.t.counted[i] {
			s.Cells = max(0, rows-p.skips[i].Load())
		}
		out = append(out, s)
	}
	for _, s := range p.found {
		c := s.ColumnStat
		c.Cells = s.cells.Load()
		out = append(out, c)
	}
	return out
}

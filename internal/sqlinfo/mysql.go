package sqlinfo

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/xwb1989/sqlparser"
)

// analyzeMySQL analyzes each statement span of q with the MySQL grammar.
func analyzeMySQL(q string, spans []span, hazard string) (stmts []Statement, sensitive bool) {
	if len(spans) == 0 {
		return []Statement{unknownStatement(trimStatement(q), "no statement")}, true
	}
	if hazard != "" {
		// The parser and the server would read this text differently; no
		// statement in it can be trusted.
		stmts = make([]Statement, len(spans))
		for i, sp := range spans {
			stmts[i] = unknownStatement(trimStatement(q[sp.start:sp.end]), "ambiguous text: "+hazard)
		}
		return stmts, true
	}
	stmts = make([]Statement, len(spans))
	for i, sp := range spans {
		text := trimStatement(q[sp.start:sp.end])
		st, sens := analyzeMySQLOne(text)
		st.Text = text
		stmts[i] = st
		sensitive = sensitive || sens
	}
	return stmts, sensitive
}

func analyzeMySQLOne(text string) (st Statement, sensitive bool) {
	defer func() {
		// The parser panics on some inputs; that is an unreadable statement.
		if r := recover(); r != nil {
			st, sensitive = unknownStatement(text, fmt.Sprintf("parser failure: %v", r)), true
		}
	}()
	// ParseStrictDDL, unlike Parse, neither accepts a half-read DDL statement
	// (which could hide the rest of it) nor writes to the global logger.
	tree, err := sqlparser.ParseStrictDDL(text)
	if err != nil {
		return unknownStatement(text, err.Error()), true
	}
	a := &myAnalysis{st: Statement{Limit: -1}, handled: map[*sqlparser.AliasedTableExpr]bool{}}
	a.statement(tree, text)
	a.finish(tree)
	return a.st, a.sensitive
}

type myAnalysis struct {
	st        Statement
	sensitive bool
	handled   map[*sqlparser.AliasedTableExpr]bool
}

func myRel(t sqlparser.TableName) Relation {
	return Relation{Schema: t.Qualifier.String(), Name: t.Name.String()}
}

func (a *myAnalysis) set(cmd string, e Effect) { a.st.Command, a.st.Effect = cmd, e }
func (a *myAnalysis) danger(d Danger)          { a.st.Dangers = appendDanger(a.st.Dangers, d) }

func (a *myAnalysis) statement(tree sqlparser.Statement, text string) {
	switch s := tree.(type) {
	case *sqlparser.Select:
		a.set("SELECT", Read)
		a.st.Columns = toOutput(a.selectStmt(s, nil))
		a.st.Limit = a.limit(s.Limit)
	case *sqlparser.Union:
		a.set("SELECT", Read)
		a.st.Columns = toOutput(a.selectStmt(s, nil))
		a.st.Limit = a.limit(s.Limit)
	case *sqlparser.ParenSelect:
		a.set("SELECT", Read)
		a.st.Columns = toOutput(a.selectStmt(s, nil))
	case *sqlparser.Stream:
		a.set("STREAM", Read)
		a.st.Writes = nil
		a.st.Reads = appendRel(a.st.Reads, myRel(s.Table))
	case *sqlparser.Insert:
		a.set(strings.ToUpper(s.Action), Write)
		a.st.Writes = appendRel(a.st.Writes, myRel(s.Table))
		switch rows := s.Rows.(type) {
		case sqlparser.SelectStatement:
			a.selectStmt(rows, nil)
		case sqlparser.Values:
			for _, t := range rows {
				for _, e := range t {
					a.exprSources(e, nil)
				}
			}
		}
		sc := &scope{items: []*fromItem{{alias: s.Table.Name.String(), rel: ptrRel(myRel(s.Table))}}}
		for _, u := range s.OnDup {
			a.exprSources(u.Expr, sc)
		}
	case *sqlparser.Update:
		a.set("UPDATE", Write)
		sc := &scope{}
		for _, te := range s.TableExprs {
			a.fromItem(te, sc)
		}
		a.markWritten(sc, updateTargets(s.Exprs))
		for _, u := range s.Exprs {
			a.exprSources(u.Expr, sc)
		}
		a.where(s.Where, sc)
		if s.Limit != nil {
			a.st.Limit = a.limit(s.Limit)
		}
	case *sqlparser.Delete:
		a.set("DELETE", Write)
		sc := &scope{}
		for _, te := range s.TableExprs {
			a.fromItem(te, sc)
		}
		var targets []string
		for _, t := range s.Targets {
			targets = append(targets, t.Name.String())
		}
		if len(targets) == 0 {
			targets = []string{""}
		}
		a.markWritten(sc, targets)
		a.where(s.Where, sc)
		if s.Limit != nil {
			a.st.Limit = a.limit(s.Limit)
		}
	case *sqlparser.Set:
		a.set("SET", Utility)
		for _, e := range s.Exprs {
			name := strings.ToLower(e.Name.String())
			name = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "@@"), "session."), "local.")
			switch {
			case strings.HasPrefix(name, "global.") || s.Scope == sqlparser.GlobalStr:
				a.st.Effect = DCL
				a.danger(SessionChange)
			case name == "sql_mode" || name == "sql_log_bin" || name == "foreign_key_checks" || name == "unique_checks" ||
				name == "sql_safe_updates" || name == "names" || strings.HasPrefix(name, "character_set") ||
				name == "charset" || name == "role" || name == "sql_quote_show_create":
				a.danger(SessionChange)
			case name == "autocommit" || strings.HasPrefix(name, "tx_") || strings.HasPrefix(name, "transaction"):
				if a.st.Effect == Utility {
					a.st.Effect = TCL
				}
			}
			a.exprSources(e.Expr, nil)
		}
	case *sqlparser.DBDDL:
		a.set(strings.ToUpper(s.Action)+" DATABASE", DDL)
	case *sqlparser.DDL:
		switch s.Action {
		case sqlparser.TruncateStr:
			a.set("TRUNCATE TABLE", Write)
		default:
			a.set(strings.ToUpper(s.Action)+" TABLE", DDL)
		}
		for _, t := range []sqlparser.TableName{s.Table, s.NewName} {
			if !t.IsEmpty() {
				a.st.Writes = appendRel(a.st.Writes, myRel(t))
			}
		}
	case *sqlparser.Show:
		a.set("SHOW", Utility)
		if !s.OnTable.IsEmpty() {
			a.st.Reads = appendRel(a.st.Reads, myRel(s.OnTable))
		}
	case *sqlparser.Use:
		a.set("USE", Utility)
		a.danger(SessionChange)
	case *sqlparser.Begin:
		a.set("BEGIN", TCL)
	case *sqlparser.Commit:
		a.set("COMMIT", TCL)
	case *sqlparser.Rollback:
		a.set("ROLLBACK", TCL)
	case *sqlparser.OtherRead:
		a.otherRead(text)
	case *sqlparser.OtherAdmin:
		a.set(keyword(text), Utility)
	default:
		a.set("", Unknown)
		a.st.Error = fmt.Sprintf("statement kind %T is not classified", tree)
	}
}

// otherRead handles EXPLAIN and DESCRIBE, which the parser skips: the
// explained statement is analyzed here, and EXPLAIN ANALYZE of a write runs it.
func (a *myAnalysis) otherRead(text string) {
	// These facts come from the text after the keyword, literals included.
	a.sensitive = true
	a.set(keyword(text), Read)
	rest := strings.TrimSpace(text[len(firstWord(text)):])
	analyze := false
	for {
		w := strings.ToLower(firstWord(rest))
		switch {
		case w == "analyze":
			analyze = true
		case w == "extended" || w == "partitions" || strings.HasPrefix(w, "format"):
		default:
			goto done
		}
		rest = strings.TrimSpace(rest[len(w):])
		if strings.HasPrefix(rest, "=") {
			rest = strings.TrimSpace(rest[1:])
			rest = strings.TrimSpace(rest[len(firstWord(rest)):])
		}
	}
done:
	if rest == "" {
		return
	}
	inner, sens := analyzeMySQLOne(rest)
	a.sensitive = a.sensitive || sens
	if inner.Effect == Unknown {
		// DESCRIBE t [column] does not parse as a statement: a table name.
		if name := firstWord(rest); name != "" && isPlainName(name) {
			parts := strings.Split(strings.ReplaceAll(name, "`", ""), ".")
			r := Relation{Name: parts[len(parts)-1]}
			if len(parts) == 2 {
				r.Schema = parts[0]
			}
			a.st.Reads = appendRel(a.st.Reads, r)
			return
		}
		a.st.Effect, a.st.Error = Unknown, inner.Error
		return
	}
	for _, r := range inner.Reads {
		a.st.Reads = appendRel(a.st.Reads, r)
	}
	for _, f := range inner.Functions {
		a.st.Functions = appendString(a.st.Functions, f)
	}
	if analyze && inner.Effect != Read {
		a.st.Effect = inner.Effect
		a.st.Writes = inner.Writes
		a.danger(HiddenWrite)
		for _, d := range inner.Dangers {
			a.danger(d)
		}
	} else {
		for _, r := range inner.Writes {
			a.st.Reads = appendRel(a.st.Reads, r)
		}
	}
}

func isPlainName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isIdentCont(MySQL, c) || c == '.' || c == '`' || c == '$') {
			return false
		}
	}
	return true
}

func firstWord(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) || s[i] == '(' || s[i] == ';' {
			return s[:i]
		}
	}
	return s
}

// updateTargets returns the table qualifiers of an UPDATE's SET list; ""
// stands for an unqualified column.
func updateTargets(exprs sqlparser.UpdateExprs) []string {
	var out []string
	for _, u := range exprs {
		out = appendString(out, u.Name.Qualifier.Name.String())
	}
	return out
}

// markWritten moves the FROM items named by targets ("" = every base table
// when there is only one, else all of them) from read to written.
func (a *myAnalysis) markWritten(sc *scope, targets []string) {
	bases := 0
	for _, it := range sc.items {
		if it.rel != nil {
			bases++
		}
	}
	for _, it := range sc.items {
		if it.rel == nil {
			continue
		}
		for _, t := range targets {
			if t == "" || t == it.alias || t == it.rel.Name {
				a.st.Writes = appendRel(a.st.Writes, *it.rel)
				break
			}
		}
	}
	// Tables only read stay in Reads; written ones leave it.
	var reads []Relation
	for _, r := range a.st.Reads {
		written := false
		for _, w := range a.st.Writes {
			if w == r {
				written = true
			}
		}
		if !written {
			reads = append(reads, r)
		}
	}
	a.st.Reads = reads
	_ = bases
}

func (a *myAnalysis) where(w *sqlparser.Where, sc *scope) {
	if w == nil || w.Expr == nil {
		return
	}
	a.st.HasWhere = true
	a.exprSources(w.Expr, sc)
	if v, known := a.truth(w.Expr); known && v {
		a.st.WhereAlwaysTrue = true
	}
}

func (a *myAnalysis) limit(l *sqlparser.Limit) int64 {
	if l == nil || l.Rowcount == nil {
		return -1
	}
	v, ok := l.Rowcount.(*sqlparser.SQLVal)
	if !ok || v.Type != sqlparser.IntVal {
		return -1
	}
	a.sensitive = true
	n, err := strconv.ParseInt(string(v.Val), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func (a *myAnalysis) selectStmt(s sqlparser.SelectStatement, outer *scope) []column {
	switch s := s.(type) {
	case *sqlparser.Union:
		l := a.selectStmt(s.Left, outer)
		r := a.selectStmt(s.Right, outer)
		return mergeUnion(l, r)
	case *sqlparser.ParenSelect:
		return a.selectStmt(s.Select, outer)
	case *sqlparser.Select:
		sc := &scope{parent: outer}
		for _, te := range s.From {
			a.fromItem(te, sc)
		}
		if s.Where != nil {
			a.exprSources(s.Where.Expr, sc)
		}
		if s.Having != nil {
			a.exprSources(s.Having.Expr, sc)
		}
		for _, g := range s.GroupBy {
			a.exprSources(g, sc)
		}
		for _, o := range s.OrderBy {
			a.exprSources(o.Expr, sc)
		}
		var cols []column
		for _, se := range s.SelectExprs {
			switch e := se.(type) {
			case *sqlparser.StarExpr:
				cols = append(cols, sc.star(e.TableName.Name.String())...)
			case *sqlparser.AliasedExpr:
				name := e.As.String()
				if name == "" {
					if cn, ok := e.Expr.(*sqlparser.ColName); ok {
						name = cn.Name.String()
					} else {
						// MySQL names the column after the expression's text.
						name = sqlparser.String(e.Expr)
						a.sensitive = a.sensitive || hasLiteral(e.Expr)
					}
				}
				cols = append(cols, column{name: name, sources: a.exprSources(e.Expr, sc)})
			case sqlparser.Nextval:
				cols = append(cols, column{name: "nextval", sources: a.exprSources(e.Expr, sc)})
			}
		}
		return cols
	}
	return nil
}

func (a *myAnalysis) fromItem(te sqlparser.TableExpr, sc *scope) {
	switch t := te.(type) {
	case *sqlparser.AliasedTableExpr:
		switch x := t.Expr.(type) {
		case sqlparser.TableName:
			a.handled[t] = true
			if x.Qualifier.IsEmpty() && strings.EqualFold(x.Name.String(), "dual") {
				// The parser's stand-in FROM for SELECT without one.
				return
			}
			r := myRel(x)
			a.st.Reads = appendRel(a.st.Reads, r)
			alias := t.As.String()
			if alias == "" {
				alias = x.Name.String()
			}
			sc.items = append(sc.items, &fromItem{alias: alias, rel: &r})
		case *sqlparser.Subquery:
			cols := a.selectStmt(x.Select, sc)
			sc.items = append(sc.items, &fromItem{alias: t.As.String(), cols: cols})
		}
	case *sqlparser.ParenTableExpr:
		for _, e := range t.Exprs {
			a.fromItem(e, sc)
		}
	case *sqlparser.JoinTableExpr:
		a.fromItem(t.LeftExpr, sc)
		a.fromItem(t.RightExpr, sc)
		if t.Condition.On != nil {
			a.exprSources(t.Condition.On, sc)
		}
	}
}

// exprSources returns the columns an expression is derived from; subqueries
// inside it are analyzed in scope.
func (a *myAnalysis) exprSources(e sqlparser.Expr, sc *scope) []ColumnRef {
	var out []ColumnRef
	if e == nil {
		return nil
	}
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch x := n.(type) {
		case *sqlparser.ColName:
			var names []string
			if q := x.Qualifier.Qualifier.String(); q != "" {
				names = append(names, q)
			}
			if t := x.Qualifier.Name.String(); t != "" {
				names = append(names, t)
			}
			names = append(names, x.Name.String())
			out = appendRefs(out, sc.resolve(names)...)
			return false, nil
		case *sqlparser.Subquery:
			for _, c := range a.selectStmt(x.Select, sc) {
				out = appendRefs(out, c.sources...)
			}
			return false, nil
		}
		return true, nil
	}, e)
	return out
}

// finish records functions and their dangers and reports every table the
// structural pass did not place as read.
func (a *myAnalysis) finish(tree sqlparser.Statement) {
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch x := n.(type) {
		case *sqlparser.AliasedTableExpr:
			if tn, ok := x.Expr.(sqlparser.TableName); ok && !a.handled[x] {
				r := myRel(tn)
				written := false
				for _, w := range a.st.Writes {
					written = written || w == r
				}
				if !written {
					a.st.Reads = appendRel(a.st.Reads, r)
				}
			}
		case *sqlparser.FuncExpr:
			name := strings.ToLower(x.Name.String())
			if q := x.Qualifier.String(); q != "" {
				name = strings.ToLower(q) + "." + name
			}
			a.st.Functions = appendString(a.st.Functions, name)
			if d, ok := dangerousFunctions[lastName(name)]; ok {
				a.danger(d)
			}
		case *sqlparser.GroupConcatExpr:
			a.st.Functions = appendString(a.st.Functions, "group_concat")
		case *sqlparser.ConvertExpr, *sqlparser.ConvertUsingExpr:
			a.st.Functions = appendString(a.st.Functions, "convert")
		case *sqlparser.SubstrExpr:
			a.st.Functions = appendString(a.st.Functions, "substr")
		}
		return true, nil
	}, tree)
}

// truth evaluates a WHERE expression that needs no row.
func (a *myAnalysis) truth(e sqlparser.Expr) (value, known bool) {
	switch x := e.(type) {
	case *sqlparser.ParenExpr:
		return a.truth(x.Expr)
	case *sqlparser.AndExpr:
		l, lk := a.truth(x.Left)
		r, rk := a.truth(x.Right)
		if (lk && !l) || (rk && !r) {
			return false, true
		}
		return true, lk && rk
	case *sqlparser.OrExpr:
		l, lk := a.truth(x.Left)
		r, rk := a.truth(x.Right)
		if (lk && l) || (rk && r) {
			return true, true
		}
		return false, lk && rk
	case *sqlparser.NotExpr:
		v, k := a.truth(x.Expr)
		return !v, k
	case *sqlparser.IsExpr:
		switch x.Operator {
		case sqlparser.IsTrueStr, sqlparser.IsNotFalseStr:
			v, k := a.truth(x.Expr)
			return v, k
		case sqlparser.IsFalseStr, sqlparser.IsNotTrueStr:
			v, k := a.truth(x.Expr)
			return !v, k
		case sqlparser.IsNullStr, sqlparser.IsNotNullStr:
			c, ok := a.constant(x.Expr)
			if !ok {
				return false, false
			}
			return (c == nil) == (x.Operator == sqlparser.IsNullStr), true
		}
	case *sqlparser.ComparisonExpr:
		if lc, ok := x.Left.(*sqlparser.ColName); ok {
			if rc, ok := x.Right.(*sqlparser.ColName); ok && lc.Equal(rc) {
				switch x.Operator {
				case sqlparser.EqualStr, sqlparser.GreaterEqualStr, sqlparser.LessEqualStr, sqlparser.NullSafeEqualStr:
					return true, true
				}
			}
		}
		switch x.Operator {
		case sqlparser.InStr, sqlparser.NotInStr:
			l, lok := a.constant(x.Left)
			tuple, ok := x.Right.(sqlparser.ValTuple)
			if !lok || !ok {
				return false, false
			}
			for _, item := range tuple {
				r, rok := a.constant(item)
				if !rok {
					return false, false
				}
				if v, k := compareConst("=", l, r); k && v {
					return x.Operator == sqlparser.InStr, true
				}
			}
			return x.Operator == sqlparser.NotInStr, true
		case sqlparser.LikeStr, sqlparser.NotLikeStr:
			r, rok := a.constant(x.Right)
			if s, ok := r.(string); rok && ok && s != "" && strings.Trim(s, "%") == "" {
				return x.Operator == sqlparser.LikeStr, true
			}
			return false, false
		}
		// The right side is looked at only when the left is a constant, so
		// "id = 5" never reads its literal and stays shareable in the cache.
		l, lok := a.constant(x.Left)
		if !lok {
			return false, false
		}
		r, rok := a.constant(x.Right)
		if !rok {
			return false, false
		}
		if x.Operator == sqlparser.NullSafeEqualStr && (l == nil || r == nil) {
			return l == nil && r == nil, true
		}
		return compareConst(x.Operator, mysqlCoerce(l, r), mysqlCoerce(r, l))
	case *sqlparser.RangeCond:
		v, lok := a.constant(x.Left)
		if !lok {
			return false, false
		}
		lo, fok := a.constant(x.From)
		hi, tok := a.constant(x.To)
		if !fok || !tok {
			return false, false
		}
		v1, k1 := compareConst(">=", v, lo)
		v2, k2 := compareConst("<=", v, hi)
		if !k1 || !k2 {
			return false, false
		}
		in := v1 && v2
		if x.Operator == sqlparser.NotBetweenStr {
			return !in, true
		}
		return in, true
	case *sqlparser.ExistsExpr:
		if s, ok := x.Subquery.Select.(*sqlparser.Select); ok && len(s.From) <= 1 && s.Where == nil && s.Having == nil && s.Limit == nil {
			if len(s.From) == 0 {
				return true, true
			}
			if at, ok := s.From[0].(*sqlparser.AliasedTableExpr); ok {
				if tn, ok := at.Expr.(sqlparser.TableName); ok && strings.EqualFold(tn.Name.String(), "dual") {
					return true, true
				}
			}
		}
	default:
		c, ok := a.constant(e)
		if !ok {
			return false, false
		}
		switch v := c.(type) {
		case nil:
			return false, true
		case bool:
			return v, true
		case int64:
			return v != 0, true
		case float64:
			return v != 0, true
		case string:
			return mysqlNumber(v) != 0, true
		}
	}
	return false, false
}

// mysqlCoerce converts a string compared with a number to a number, as MySQL does.
func mysqlCoerce(v, other any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	switch other.(type) {
	case int64, float64, bool:
		return mysqlNumber(s)
	}
	return v
}

// mysqlNumber reads the numeric prefix of s ("12abc" is 12, "abc" is 0).
func mysqlNumber(s string) float64 {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (isDigit(s[end]) || s[end] == '.' || (end == 0 && (s[end] == '-' || s[end] == '+'))) {
		end++
	}
	f, _ := strconv.ParseFloat(s[:end], 64)
	return f
}

func (a *myAnalysis) constant(e sqlparser.Expr) (any, bool) {
	switch x := e.(type) {
	case *sqlparser.ParenExpr:
		return a.constant(x.Expr)
	case *sqlparser.NullVal:
		return nil, true
	case sqlparser.BoolVal:
		return bool(x), true
	case *sqlparser.SQLVal:
		a.sensitive = true
		switch x.Type {
		case sqlparser.StrVal:
			return string(x.Val), true
		case sqlparser.IntVal:
			n, err := strconv.ParseInt(string(x.Val), 10, 64)
			return n, err == nil
		case sqlparser.FloatVal:
			f, err := strconv.ParseFloat(string(x.Val), 64)
			return f, err == nil
		}
	case *sqlparser.UnaryExpr:
		v, ok := a.constant(x.Expr)
		if !ok {
			return nil, false
		}
		switch n := v.(type) {
		case int64:
			if x.Operator == sqlparser.UMinusStr {
				return -n, true
			}
			if x.Operator == sqlparser.UPlusStr {
				return n, true
			}
		}
	case *sqlparser.BinaryExpr:
		l, lok := a.constant(x.Left)
		if !lok {
			return nil, false
		}
		r, rok := a.constant(x.Right)
		li, lInt := l.(int64)
		ri, rInt := r.(int64)
		if !lok || !rok || !lInt || !rInt {
			return nil, false
		}
		switch x.Operator {
		case sqlparser.PlusStr:
			return li + ri, true
		case sqlparser.MinusStr:
			return li - ri, true
		case sqlparser.MultStr:
			return li * ri, true
		}
	case *sqlparser.ComparisonExpr, *sqlparser.AndExpr, *sqlparser.OrExpr, *sqlparser.NotExpr, *sqlparser.IsExpr:
		v, k := a.truth(e)
		if !k {
			return nil, false
		}
		if v {
			return int64(1), true
		}
		return int64(0), true
	}
	return nil, false
}

// hasLiteral reports whether e contains a literal value.
func hasLiteral(e sqlparser.Expr) bool {
	found := false
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		if _, ok := n.(*sqlparser.SQLVal); ok {
			found = true
		}
		return !found, nil
	}, e)
	return found
}

// keyword returns the leading keyword of a statement, upper-cased.
func keyword(text string) string {
	text = strings.TrimLeft(text, " \t\r\n\f\v")
	i := 0
	for i < len(text) && ((text[i]|0x20) >= 'a' && (text[i]|0x20) <= 'z') {
		i++
	}
	return strings.ToUpper(text[:i])
}

package sqlinfo

import (
	"fmt"
	"strconv"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// analyzePostgres parses q with the PostgreSQL parser and returns one
// Statement per statement in it. sensitive reports that a fact depends on a
// literal's value, so the result may only be reused for identical text.
func analyzePostgres(q string, spans []span) (stmts []Statement, sensitive bool) {
	return analyzePostgresText(q, q, spans)
}

// analyzePostgresText parses q; statement texts are taken from orig (which
// q was rewritten from) through spans when they match the parser's count.
func analyzePostgresText(q, orig string, spans []span) (stmts []Statement, sensitive bool) {
	defer func() {
		// A tree shape the analyzer did not foresee is an unreadable
		// statement, not a crash of the caller.
		if r := recover(); r != nil {
			stmts, sensitive = []Statement{unknownStatement(trimStatement(orig), fmt.Sprintf("analyzer failure: %v", r))}, true
		}
	}()
	tree, err := pg.Parse(q)
	if err != nil {
		return []Statement{unknownStatement(trimStatement(orig), err.Error())}, true
	}
	raw := tree.GetStmts()
	if len(raw) == 0 {
		return []Statement{unknownStatement(trimStatement(orig), "no statement")}, true
	}
	useSpans := len(spans) == len(raw)
	stmts = make([]Statement, len(raw))
	for i, rs := range raw {
		var text string
		if useSpans {
			text = trimStatement(orig[spans[i].start:spans[i].end])
		} else {
			start := int(rs.GetStmtLocation())
			end := len(q)
			if l := int(rs.GetStmtLen()); l > 0 {
				end = start + l
			}
			if start < 0 || start > len(q) || end > len(q) || end < start {
				start, end = 0, len(q)
			}
			text = trimStatement(q[start:end])
		}
		a := newPGAnalysis()
		a.statement(rs.GetStmt())
		a.finish(rs.GetStmt())
		st := a.st
		st.Text = text
		stmts[i] = st
		sensitive = sensitive || a.sensitive
	}
	return stmts, sensitive
}

func unknownStatement(text, msg string) Statement {
	return Statement{Text: text, Effect: Unknown, Limit: -1, Error: msg}
}

// pgAnalysis derives the facts of one parsed statement.
type pgAnalysis struct {
	st        Statement
	sensitive bool
	// handled holds the relation nodes the structural pass has placed (as a
	// read, a write or a CTE reference); the final walk reports every other
	// relation node as read, so no relation escapes the facts.
	handled map[*pg.RangeVar]bool
	// handledDML holds data-modifying statements the structural pass saw.
	handledDML map[proto.Message]bool
	// notExecuted holds subtrees that are parsed but not run (EXPLAIN
	// without ANALYZE, PREPARE): their writes do not happen.
	notExecuted map[proto.Message]bool
}

func newPGAnalysis() *pgAnalysis {
	return &pgAnalysis{
		st:          Statement{Limit: -1},
		handled:     map[*pg.RangeVar]bool{},
		handledDML:  map[proto.Message]bool{},
		notExecuted: map[proto.Message]bool{},
	}
}

// cteScope holds the common table expressions visible at a query level.
type cteScope struct {
	names  map[string][]column
	parent *cteScope
}

func (c *cteScope) lookup(name string) ([]column, bool) {
	for s := c; s != nil; s = s.parent {
		if cols, ok := s.names[name]; ok {
			return cols, true
		}
	}
	return nil, false
}

func relOf(rv *pg.RangeVar) Relation {
	schema := rv.GetSchemaname()
	if c := rv.GetCatalogname(); c != "" {
		schema = c + "." + schema
	}
	return Relation{Schema: schema, Name: rv.GetRelname()}
}

func (a *pgAnalysis) read(rv *pg.RangeVar) {
	a.handled[rv] = true
	a.st.Reads = appendRel(a.st.Reads, relOf(rv))
}

func (a *pgAnalysis) write(rv *pg.RangeVar) {
	if rv == nil {
		return
	}
	a.handled[rv] = true
	a.st.Writes = appendRel(a.st.Writes, relOf(rv))
}

func (a *pgAnalysis) danger(d Danger) { a.st.Dangers = appendDanger(a.st.Dangers, d) }

func (a *pgAnalysis) set(cmd string, e Effect) {
	a.st.Command, a.st.Effect = cmd, e
}

// raise lifts the statement's effect to e when e reaches further.
func (a *pgAnalysis) raise(e Effect) {
	if effectRank[e] > effectRank[a.st.Effect] {
		a.st.Effect = e
	}
}

func (a *pgAnalysis) statement(n *pg.Node) {
	switch {
	case n.GetSelectStmt() != nil:
		s := n.GetSelectStmt()
		a.set("SELECT", Read)
		cols := a.selectStmt(s, nil, nil)
		a.st.Limit = a.limit(s)
		if into := s.GetIntoClause(); into != nil {
			a.set("SELECT INTO", DDL)
			a.write(into.GetRel())
			a.danger(HiddenWrite)
		} else {
			a.st.Columns = toOutput(cols)
		}
	case n.GetInsertStmt() != nil:
		a.set("INSERT", Write)
		a.st.Columns = toOutput(a.insertStmt(n.GetInsertStmt(), nil, nil))
	case n.GetUpdateStmt() != nil:
		a.set("UPDATE", Write)
		a.st.Columns = toOutput(a.updateStmt(n.GetUpdateStmt(), nil, nil, true))
	case n.GetDeleteStmt() != nil:
		a.set("DELETE", Write)
		a.st.Columns = toOutput(a.deleteStmt(n.GetDeleteStmt(), nil, nil, true))
	case n.GetMergeStmt() != nil:
		a.set("MERGE", Write)
		a.st.Columns = toOutput(a.mergeStmt(n.GetMergeStmt(), nil, nil))
	case n.GetCopyStmt() != nil:
		a.copyStmt(n.GetCopyStmt())
	case n.GetExplainStmt() != nil:
		a.explainStmt(n.GetExplainStmt())
	case n.GetCreateTableAsStmt() != nil:
		s := n.GetCreateTableAsStmt()
		switch {
		case s.GetIsSelectInto():
			a.set("SELECT INTO", DDL)
			a.danger(HiddenWrite)
		case s.GetObjtype() == pg.ObjectType_OBJECT_MATVIEW:
			a.set("CREATE MATERIALIZED VIEW", DDL)
		default:
			a.set("CREATE TABLE AS", DDL)
			a.danger(HiddenWrite)
		}
		a.write(s.GetInto().GetRel())
		a.subStatement(s.GetQuery(), false)
	case n.GetViewStmt() != nil:
		s := n.GetViewStmt()
		a.set("CREATE VIEW", DDL)
		a.write(s.GetView())
		if q := s.GetQuery().GetSelectStmt(); q != nil {
			a.selectStmt(q, nil, nil)
		}
	case n.GetPrepareStmt() != nil:
		s := n.GetPrepareStmt()
		a.set("PREPARE", Utility)
		a.danger(DynamicSQL)
		// The statement runs later, under EXECUTE; its effect is named here
		// so a policy can refuse to prepare what it would refuse to run.
		a.notExecuted[s.GetQuery()] = true
		a.raise(a.subStatement(s.GetQuery(), false))
	case n.GetExecuteStmt() != nil:
		a.set("EXECUTE", Write)
		a.danger(DynamicSQL)
	case n.GetDoStmt() != nil:
		a.set("DO", Write)
		a.danger(DynamicSQL)
		for _, o := range n.GetDoStmt().GetArgs() {
			if d := o.GetDefElem(); d != nil && d.GetDefname() == "language" {
				a.sensitive = true // LANGUAGE 'plpython3u' may be a literal
				if untrustedLanguage(d.GetArg().GetString_().GetSval()) {
					a.danger(ProgramExecution)
				}
			}
		}
	case n.GetCallStmt() != nil:
		a.set("CALL", Write)
		a.danger(DynamicSQL)
		if fc := n.GetCallStmt().GetFunccall(); fc != nil {
			a.exprSources(&pg.Node{Node: &pg.Node_FuncCall{FuncCall: fc}}, nil, nil)
		}
	case n.GetDeclareCursorStmt() != nil:
		a.set("DECLARE CURSOR", Read)
		a.subStatement(n.GetDeclareCursorStmt().GetQuery(), true)
		a.st.Command = "DECLARE CURSOR"
		a.st.Columns = nil
	case n.GetFetchStmt() != nil:
		if n.GetFetchStmt().GetIsmove() {
			a.set("MOVE", Utility)
		} else {
			a.set("FETCH", Read)
		}
	case n.GetClosePortalStmt() != nil:
		a.set("CLOSE CURSOR", Utility)
	case n.GetVariableSetStmt() != nil:
		a.variableSet(n.GetVariableSetStmt())
	case n.GetVariableShowStmt() != nil:
		a.set("SHOW", Utility)
		name := n.GetVariableShowStmt().GetName()
		a.st.Columns = []OutputColumn{{Name: name}}
	case n.GetTransactionStmt() != nil:
		a.transactionStmt(n.GetTransactionStmt())
	case n.GetConstraintsSetStmt() != nil:
		a.set("SET CONSTRAINTS", TCL)
	case n.GetTruncateStmt() != nil:
		a.set("TRUNCATE TABLE", Write)
		for _, r := range n.GetTruncateStmt().GetRelations() {
			a.write(r.GetRangeVar())
		}
	case n.GetRefreshMatViewStmt() != nil:
		a.set("REFRESH MATERIALIZED VIEW", DDL)
		a.write(n.GetRefreshMatViewStmt().GetRelation())
	case n.GetGrantStmt() != nil:
		if n.GetGrantStmt().GetIsGrant() {
			a.set("GRANT", DCL)
		} else {
			a.set("REVOKE", DCL)
		}
		a.danger(PrivilegeChange)
		a.ddlTargets(n.GetGrantStmt())
	case n.GetGrantRoleStmt() != nil:
		if n.GetGrantRoleStmt().GetIsGrant() {
			a.set("GRANT ROLE", DCL)
		} else {
			a.set("REVOKE ROLE", DCL)
		}
		a.danger(PrivilegeChange)
	case n.GetCreateRoleStmt() != nil:
		a.set("CREATE ROLE", DCL)
		a.danger(PrivilegeChange)
	case n.GetAlterRoleStmt() != nil:
		a.set("ALTER ROLE", DCL)
		a.danger(PrivilegeChange)
	case n.GetAlterRoleSetStmt() != nil:
		a.set("ALTER ROLE", DCL)
		a.danger(PrivilegeChange)
	case n.GetDropRoleStmt() != nil:
		a.set("DROP ROLE", DCL)
		a.danger(PrivilegeChange)
	case n.GetAlterDefaultPrivilegesStmt() != nil:
		a.set("ALTER DEFAULT PRIVILEGES", DCL)
		a.danger(PrivilegeChange)
	case n.GetReassignOwnedStmt() != nil:
		a.set("REASSIGN OWNED", DCL)
		a.danger(PrivilegeChange)
	case n.GetDropOwnedStmt() != nil:
		a.set("DROP OWNED", DCL)
		a.danger(PrivilegeChange)
	case n.GetAlterSystemStmt() != nil:
		a.set("ALTER SYSTEM", DCL)
		a.danger(SessionChange)
	case n.GetLoadStmt() != nil:
		a.set("LOAD", Utility)
		a.danger(FileAccess)
		a.danger(ProgramExecution)
	case n.GetDropStmt() != nil:
		a.dropStmt(n.GetDropStmt())
	case n.GetAlterTableStmt() != nil:
		a.set("ALTER "+objectTypeName(n.GetAlterTableStmt().GetObjtype()), DDL)
		a.ddlTargets(n.GetAlterTableStmt())
		for _, c := range n.GetAlterTableStmt().GetCmds() {
			switch c.GetAlterTableCmd().GetSubtype() {
			case pg.AlterTableType_AT_ChangeOwner, pg.AlterTableType_AT_DisableRowSecurity,
				pg.AlterTableType_AT_NoForceRowSecurity:
				// New owner, or row-level security off: who may see what changes.
				a.danger(PrivilegeChange)
			}
		}
	case n.GetRenameStmt() != nil:
		rs := n.GetRenameStmt()
		t := rs.GetRenameType()
		if t == pg.ObjectType_OBJECT_COLUMN || t == pg.ObjectType_OBJECT_TABCONSTRAINT {
			t = rs.GetRelationType()
		}
		a.set("ALTER "+objectTypeName(t), DDL)
		a.ddlTargets(rs)
	case n.GetAlterOwnerStmt() != nil:
		a.set("ALTER "+objectTypeName(n.GetAlterOwnerStmt().GetObjectType()), DDL)
		a.danger(PrivilegeChange)
		a.ddlTargets(n.GetAlterOwnerStmt())
	case n.GetAlterObjectSchemaStmt() != nil:
		a.set("ALTER "+objectTypeName(n.GetAlterObjectSchemaStmt().GetObjectType()), DDL)
		a.ddlTargets(n.GetAlterObjectSchemaStmt())
	case n.GetCreateFunctionStmt() != nil:
		s := n.GetCreateFunctionStmt()
		if s.GetIsProcedure() {
			a.set("CREATE PROCEDURE", DDL)
		} else {
			a.set("CREATE FUNCTION", DDL)
		}
		for _, o := range s.GetOptions() {
			if d := o.GetDefElem(); d != nil && d.GetDefname() == "language" {
				a.sensitive = true // LANGUAGE 'plpython3u' may be a literal
				if untrustedLanguage(d.GetArg().GetString_().GetSval()) {
					a.danger(ProgramExecution)
				}
			}
		}
	case n.GetCreateForeignServerStmt() != nil, n.GetCreateUserMappingStmt() != nil,
		n.GetAlterUserMappingStmt() != nil, n.GetImportForeignSchemaStmt() != nil,
		n.GetCreateSubscriptionStmt() != nil, n.GetAlterForeignServerStmt() != nil:
		a.set(genericCommand(n), DDL)
		a.danger(RemoteAccess)
		a.ddlTargets(oneof(n))
	case n.GetCreateExtensionStmt() != nil:
		a.set("CREATE EXTENSION", DDL)
		switch n.GetCreateExtensionStmt().GetExtname() {
		case "dblink", "postgres_fdw":
			a.danger(RemoteAccess)
		case "adminpack", "file_fdw", "lo":
			a.danger(FileAccess)
		case "plpython3u", "plperlu", "pltclu", "plsh":
			a.danger(ProgramExecution)
		}
	case n.GetCreatePlangStmt() != nil:
		a.set("CREATE LANGUAGE", DDL)
		a.danger(ProgramExecution)
	case n.GetCheckPointStmt() != nil, n.GetVacuumStmt() != nil, n.GetClusterStmt() != nil,
		n.GetReindexStmt() != nil, n.GetDiscardStmt() != nil, n.GetListenStmt() != nil,
		n.GetUnlistenStmt() != nil, n.GetNotifyStmt() != nil, n.GetLockStmt() != nil,
		n.GetDeallocateStmt() != nil:
		a.set(genericCommand(n), Utility)
		if v := n.GetVacuumStmt(); v != nil && !v.GetIsVacuumcmd() {
			a.st.Command = "ANALYZE"
		}
		if n.GetLockStmt() != nil {
			a.st.Command = "LOCK TABLE"
		}
		if n.GetDiscardStmt() != nil {
			a.danger(SessionChange)
		}
	default:
		cmd := genericCommand(n)
		switch {
		case cmd == "":
			a.st.Effect = Unknown
			a.st.Error = "empty statement"
		case isDDLCommand(cmd):
			a.set(cmd, DDL)
			a.ddlTargets(oneof(n))
		default:
			a.set(cmd, Unknown)
			a.st.Error = "statement kind " + cmd + " is not classified"
		}
	}
}

// subStatement analyzes a statement nested in another (the query of
// EXPLAIN, PREPARE, CREATE TABLE AS, DECLARE) into a's facts; when keepCols,
// its output columns become a's.
func (a *pgAnalysis) subStatement(n *pg.Node, keepCols bool) Effect {
	if n == nil {
		return Read
	}
	sub := &pgAnalysis{st: Statement{Limit: -1}, handled: a.handled, handledDML: a.handledDML, notExecuted: a.notExecuted}
	sub.statement(n)
	a.sensitive = a.sensitive || sub.sensitive
	for _, r := range sub.st.Reads {
		a.st.Reads = appendRel(a.st.Reads, r)
	}
	for _, r := range sub.st.Writes {
		a.st.Writes = appendRel(a.st.Writes, r)
	}
	for _, d := range sub.st.Dangers {
		a.danger(d)
	}
	if keepCols {
		a.st.Columns = sub.st.Columns
		a.st.Limit = sub.st.Limit
	}
	if sub.st.Effect == Unknown {
		a.st.Effect = Unknown
		a.st.Error = sub.st.Error
	}
	a.st.HasWhere, a.st.WhereAlwaysTrue = a.st.HasWhere || sub.st.HasWhere, a.st.WhereAlwaysTrue || sub.st.WhereAlwaysTrue
	return sub.st.Effect
}

func (a *pgAnalysis) explainStmt(s *pg.ExplainStmt) {
	analyze := false
	for _, o := range s.GetOptions() {
		d := o.GetDefElem()
		if d == nil || strings.ToLower(d.GetDefname()) != "analyze" {
			continue
		}
		analyze = a.defElemBool(d)
	}
	a.set("EXPLAIN", Read)
	if !analyze {
		// The statement is planned, not run: what it would write is only read.
		a.notExecuted[s.GetQuery()] = true
		sub := &pgAnalysis{st: Statement{Limit: -1}, handled: a.handled, handledDML: a.handledDML, notExecuted: a.notExecuted}
		sub.statement(s.GetQuery())
		a.sensitive = a.sensitive || sub.sensitive
		for _, rs := range [][]Relation{sub.st.Reads, sub.st.Writes} {
			for _, r := range rs {
				a.st.Reads = appendRel(a.st.Reads, r)
			}
		}
		if sub.st.Effect == Unknown {
			a.st.Effect, a.st.Error = Unknown, sub.st.Error
		}
	} else {
		e := a.subStatement(s.GetQuery(), false)
		if e != Read && e != Unknown {
			a.raise(e)
			a.danger(HiddenWrite)
		}
	}
	a.st.Columns = []OutputColumn{{Name: "QUERY PLAN"}}
}

// defElemBool reads an option's boolean value; a missing value means true.
func (a *pgAnalysis) defElemBool(d *pg.DefElem) bool {
	arg := d.GetArg()
	if arg == nil {
		return true
	}
	a.sensitive = true
	switch {
	case arg.GetBoolean() != nil:
		return arg.GetBoolean().GetBoolval()
	case arg.GetInteger() != nil:
		return arg.GetInteger().GetIval() != 0
	case arg.GetString_() != nil:
		v, ok := parseBoolText(arg.GetString_().GetSval())
		return !ok || v // an unreadable value is taken as the riskier reading
	}
	return true
}

func parseBoolText(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "tr", "tru", "true", "y", "ye", "yes", "on", "1":
		return true, true
	case "f", "fa", "fal", "fals", "false", "n", "no", "off", "of", "0":
		return false, true
	}
	return false, false
}

func (a *pgAnalysis) copyStmt(s *pg.CopyStmt) {
	if s.GetIsFrom() {
		a.set("COPY", Write)
		a.write(s.GetRelation())
		if w := s.GetWhereClause(); w != nil {
			sc := &scope{items: []*fromItem{{alias: s.GetRelation().GetRelname(), rel: ptrRel(relOf(s.GetRelation()))}}}
			a.exprSources(w, sc, nil)
		}
	} else {
		a.set("COPY", Read)
		if rv := s.GetRelation(); rv != nil {
			a.read(rv)
			a.st.Columns = []OutputColumn{{Star: true, Sources: []ColumnRef{{Relation: relOf(rv), Column: "*"}}}}
			if len(s.GetAttlist()) > 0 {
				a.st.Columns = nil
				for _, c := range s.GetAttlist() {
					name := c.GetString_().GetSval()
					a.st.Columns = append(a.st.Columns, OutputColumn{Name: name, Sources: []ColumnRef{{Relation: relOf(rv), Column: name}}})
				}
			}
		}
		if q := s.GetQuery(); q != nil {
			e := a.subStatement(q, true)
			a.st.Limit = -1
			if e == Write || e == DDL {
				a.raise(e)
				a.danger(HiddenWrite)
			}
		}
	}
	// FROM '' and FROM STDIN look alike in the tree (an empty file name):
	// the file fact depends on the literal, so COPY is never shared by shape.
	a.sensitive = true
	switch {
	case s.GetIsProgram():
		a.danger(ProgramExecution)
	case s.GetFilename() != "":
		a.danger(FileAccess)
	}
	if s.GetFilename() != "" || s.GetIsProgram() {
		// COPY TO a server file writes there; its rows do not come back.
		a.st.Columns = nil
	}
}

func ptrRel(r Relation) *Relation { return &r }

func (a *pgAnalysis) variableSet(s *pg.VariableSetStmt) {
	name := strings.ToLower(s.GetName())
	switch s.GetKind() {
	case pg.VariableSetKind_VAR_RESET, pg.VariableSetKind_VAR_RESET_ALL:
		a.set("RESET", Utility)
	default:
		a.set("SET", Utility)
	}
	switch name {
	case "role", "session_authorization":
		a.st.Effect = DCL
		a.danger(SessionChange)
	case "search_path", "standard_conforming_strings", "backslash_quote", "session_replication_role",
		"row_security", "default_transaction_read_only", "transaction_read_only", "escape_string_warning":
		a.danger(SessionChange)
	case "transaction", "session characteristics", "transaction_isolation", "transaction_snapshot", "transaction_deferrable":
		a.st.Effect = TCL
	}
	if s.GetKind() == pg.VariableSetKind_VAR_RESET_ALL {
		a.danger(SessionChange)
	}
}

func (a *pgAnalysis) transactionStmt(s *pg.TransactionStmt) {
	cmd := map[pg.TransactionStmtKind]string{
		pg.TransactionStmtKind_TRANS_STMT_BEGIN:             "BEGIN",
		pg.TransactionStmtKind_TRANS_STMT_START:             "START TRANSACTION",
		pg.TransactionStmtKind_TRANS_STMT_COMMIT:            "COMMIT",
		pg.TransactionStmtKind_TRANS_STMT_ROLLBACK:          "ROLLBACK",
		pg.TransactionStmtKind_TRANS_STMT_SAVEPOINT:         "SAVEPOINT",
		pg.TransactionStmtKind_TRANS_STMT_RELEASE:           "RELEASE",
		pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:       "ROLLBACK",
		pg.TransactionStmtKind_TRANS_STMT_PREPARE:           "PREPARE TRANSACTION",
		pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:   "COMMIT PREPARED",
		pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
	}[s.GetKind()]
	if cmd == "" {
		a.set("TRANSACTION", Unknown)
		a.st.Error = "unknown transaction statement"
		return
	}
	a.set(cmd, TCL)
}

var relationObjectTypes = map[pg.ObjectType]string{
	pg.ObjectType_OBJECT_TABLE:         "TABLE",
	pg.ObjectType_OBJECT_VIEW:          "VIEW",
	pg.ObjectType_OBJECT_MATVIEW:       "MATERIALIZED VIEW",
	pg.ObjectType_OBJECT_SEQUENCE:      "SEQUENCE",
	pg.ObjectType_OBJECT_INDEX:         "INDEX",
	pg.ObjectType_OBJECT_FOREIGN_TABLE: "FOREIGN TABLE",
}

// objectTypeName renders an object type for a command tag: TABLE, VIEW,
// MATERIALIZED VIEW, FUNCTION...
func objectTypeName(t pg.ObjectType) string {
	if name, ok := relationObjectTypes[t]; ok {
		return name
	}
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " ")
}

func (a *pgAnalysis) dropStmt(s *pg.DropStmt) {
	_, isRel := relationObjectTypes[s.GetRemoveType()]
	kind := objectTypeName(s.GetRemoveType())
	a.set("DROP "+kind, DDL)
	switch s.GetRemoveType() {
	case pg.ObjectType_OBJECT_ROLE:
		a.st.Effect = DCL
		a.danger(PrivilegeChange)
	}
	if !isRel {
		return
	}
	for _, o := range s.GetObjects() {
		var names []string
		for _, item := range o.GetList().GetItems() {
			names = append(names, item.GetString_().GetSval())
		}
		switch len(names) {
		case 1:
			a.st.Writes = appendRel(a.st.Writes, Relation{Name: names[0]})
		case 2:
			a.st.Writes = appendRel(a.st.Writes, Relation{Schema: names[0], Name: names[1]})
		case 3:
			a.st.Writes = appendRel(a.st.Writes, Relation{Schema: names[0] + "." + names[1], Name: names[2]})
		}
	}
}

// ddlTargets records the relations a DDL or DCL statement names directly (the
// table created, altered, indexed or granted on) as written.
func (a *pgAnalysis) ddlTargets(m proto.Message) {
	if m == nil {
		return
	}
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.Name() == "inh_relations" {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if n, ok := l.Get(i).Message().Interface().(*pg.Node); ok && n.GetRangeVar() != nil {
					a.write(n.GetRangeVar())
				}
			}
			return true
		}
		if rv, ok := v.Message().Interface().(*pg.RangeVar); ok {
			a.write(rv)
		}
		return true
	})
}

func oneof(n *pg.Node) proto.Message {
	var out proto.Message
	n.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() == protoreflect.MessageKind {
			out = v.Message().Interface()
		}
		return false
	})
	return out
}

// genericCommand derives a command tag from the node's kind:
// create_extension_stmt -> CREATE EXTENSION.
func genericCommand(n *pg.Node) string {
	name := ""
	n.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name = string(fd.Name())
		return false
	})
	if name == "" {
		return ""
	}
	if special, ok := map[string]string{
		"create_stmt": "CREATE TABLE", "index_stmt": "CREATE INDEX", "alter_table_stmt": "ALTER TABLE",
		"rename_stmt": "ALTER", "define_stmt": "CREATE", "comment_stmt": "COMMENT", "create_seq_stmt": "CREATE SEQUENCE",
		"alter_seq_stmt": "ALTER SEQUENCE", "createdb_stmt": "CREATE DATABASE", "dropdb_stmt": "DROP DATABASE",
		"create_trig_stmt": "CREATE TRIGGER", "create_event_trig_stmt": "CREATE EVENT TRIGGER",
		"alter_event_trig_stmt": "ALTER EVENT TRIGGER", "rule_stmt": "CREATE RULE", "check_point_stmt": "CHECKPOINT",
		"vacuum_stmt": "VACUUM", "cluster_stmt": "CLUSTER", "reindex_stmt": "REINDEX", "discard_stmt": "DISCARD",
		"listen_stmt": "LISTEN", "unlisten_stmt": "UNLISTEN", "notify_stmt": "NOTIFY", "lock_stmt": "LOCK TABLE",
		"deallocate_stmt": "DEALLOCATE", "composite_type_stmt": "CREATE TYPE", "create_enum_stmt": "CREATE TYPE",
		"create_range_stmt": "CREATE TYPE", "alter_enum_stmt": "ALTER TYPE", "sec_label_stmt": "SECURITY LABEL",
		"alter_object_schema_stmt": "ALTER", "alter_owner_stmt": "ALTER", "alter_object_depends_stmt": "ALTER",
		"create_plang_stmt": "CREATE LANGUAGE", "create_fdw_stmt": "CREATE FOREIGN DATA WRAPPER",
		"alter_fdw_stmt": "ALTER FOREIGN DATA WRAPPER", "create_foreign_server_stmt": "CREATE SERVER",
		"alter_foreign_server_stmt": "ALTER SERVER", "create_user_mapping_stmt": "CREATE USER MAPPING",
		"alter_user_mapping_stmt": "ALTER USER MAPPING", "drop_user_mapping_stmt": "DROP USER MAPPING",
		"create_foreign_table_stmt": "CREATE FOREIGN TABLE", "import_foreign_schema_stmt": "IMPORT FOREIGN SCHEMA",
		"create_am_stmt": "CREATE ACCESS METHOD", "alter_tsdictionary_stmt": "ALTER TEXT SEARCH DICTIONARY",
		"alter_tsconfiguration_stmt": "ALTER TEXT SEARCH CONFIGURATION", "create_stats_stmt": "CREATE STATISTICS",
		"alter_stats_stmt": "ALTER STATISTICS", "create_cast_stmt": "CREATE CAST", "create_conversion_stmt": "CREATE CONVERSION",
		"create_transform_stmt": "CREATE TRANSFORM", "create_op_class_stmt": "CREATE OPERATOR CLASS",
		"create_op_family_stmt": "CREATE OPERATOR FAMILY", "alter_op_family_stmt": "ALTER OPERATOR FAMILY",
		"alter_operator_stmt": "ALTER OPERATOR", "alter_type_stmt": "ALTER TYPE",
		"alter_database_refresh_coll_stmt": "ALTER DATABASE", "alter_database_set_stmt": "ALTER DATABASE",
		"alter_table_move_all_stmt": "ALTER TABLE", "alter_table_space_options_stmt": "ALTER TABLESPACE",
		"create_table_space_stmt": "CREATE TABLESPACE", "drop_table_space_stmt": "DROP TABLESPACE",
		"alter_collation_stmt": "ALTER COLLATION", "create_schema_stmt": "CREATE SCHEMA",
	}[name]; ok {
		return special
	}
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSuffix(name, "_stmt"), "_", " "))
}

func isDDLCommand(cmd string) bool {
	for _, p := range []string{"CREATE", "ALTER", "DROP", "COMMENT", "SECURITY LABEL", "IMPORT FOREIGN SCHEMA", "REFRESH"} {
		if strings.HasPrefix(cmd, p) {
			return true
		}
	}
	return false
}

// withClause registers the CTEs of a WITH clause and returns the new scope.
func (a *pgAnalysis) withClause(w *pg.WithClause, outer *scope, ctes *cteScope) *cteScope {
	if w == nil {
		return ctes
	}
	cs := &cteScope{names: map[string][]column{}, parent: ctes}
	for _, n := range w.GetCtes() {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		var cols []column
		q := cte.GetCtequery()
		switch {
		case q.GetSelectStmt() != nil:
			s := q.GetSelectStmt()
			if w.GetRecursive() && s.GetOp() != pg.SetOperation_SETOP_NONE && s.GetOp() != pg.SetOperation_SET_OPERATION_UNDEFINED {
				// The recursive term reads the CTE itself: seed it with the
				// non-recursive term's columns first.
				seed := a.selectStmt(s.GetLarg(), outer, cs)
				cs.names[cte.GetCtename()] = renameCols(seed, cte.GetAliascolnames())
				r := a.selectStmt(s.GetRarg(), outer, cs)
				cols = mergeUnion(seed, r)
			} else {
				cols = a.selectStmt(s, outer, cs)
			}
		default:
			cols = a.dml(q, outer, cs)
			a.danger(HiddenWrite)
			a.raise(Write)
		}
		cs.names[cte.GetCtename()] = renameCols(cols, cte.GetAliascolnames())
	}
	return cs
}

// dml analyzes a data-modifying statement nested in a query (a CTE).
func (a *pgAnalysis) dml(q *pg.Node, outer *scope, ctes *cteScope) []column {
	switch {
	case q.GetInsertStmt() != nil:
		a.handledDML[q.GetInsertStmt()] = true
		return a.insertStmt(q.GetInsertStmt(), outer, ctes)
	case q.GetUpdateStmt() != nil:
		a.handledDML[q.GetUpdateStmt()] = true
		return a.updateStmt(q.GetUpdateStmt(), outer, ctes, false)
	case q.GetDeleteStmt() != nil:
		a.handledDML[q.GetDeleteStmt()] = true
		return a.deleteStmt(q.GetDeleteStmt(), outer, ctes, false)
	case q.GetMergeStmt() != nil:
		a.handledDML[q.GetMergeStmt()] = true
		return a.mergeStmt(q.GetMergeStmt(), outer, ctes)
	}
	return nil
}

func renameCols(cols []column, names []*pg.Node) []column {
	if len(names) == 0 {
		return cols
	}
	out := append([]column(nil), cols...)
	for i, n := range names {
		if i < len(out) && !out[i].star {
			out[i].name = n.GetString_().GetSval()
		}
	}
	return out
}

func (a *pgAnalysis) selectStmt(s *pg.SelectStmt, outer *scope, ctes *cteScope) []column {
	if s == nil {
		return nil
	}
	ctes = a.withClause(s.GetWithClause(), outer, ctes)
	if op := s.GetOp(); op != pg.SetOperation_SETOP_NONE && op != pg.SetOperation_SET_OPERATION_UNDEFINED {
		l := a.selectStmt(s.GetLarg(), outer, ctes)
		r := a.selectStmt(s.GetRarg(), outer, ctes)
		a.walkExprs(s.GetSortClause(), outer, ctes)
		return mergeUnion(l, r)
	}
	if vl := s.GetValuesLists(); len(vl) > 0 {
		var cols []column
		for _, row := range vl {
			for i, v := range row.GetList().GetItems() {
				if i >= len(cols) {
					cols = append(cols, column{name: "column" + strconv.Itoa(i+1)})
				}
				cols[i].sources = appendRefs(cols[i].sources, a.exprSources(v, outer, ctes)...)
			}
		}
		return cols
	}
	sc := &scope{parent: outer}
	for _, f := range s.GetFromClause() {
		a.fromItem(f, sc, ctes)
	}
	a.exprSources(s.GetWhereClause(), sc, ctes)
	a.exprSources(s.GetHavingClause(), sc, ctes)
	a.walkExprs(s.GetGroupClause(), sc, ctes)
	a.walkExprs(s.GetSortClause(), sc, ctes)
	a.walkExprs(s.GetWindowClause(), sc, ctes)
	a.walkExprs(s.GetDistinctClause(), sc, ctes)
	a.exprSources(s.GetLimitCount(), sc, ctes)
	a.exprSources(s.GetLimitOffset(), sc, ctes)
	return a.targetList(s.GetTargetList(), sc, ctes)
}

func (a *pgAnalysis) walkExprs(ns []*pg.Node, sc *scope, ctes *cteScope) {
	for _, n := range ns {
		a.exprSources(n, sc, ctes)
	}
}

func (a *pgAnalysis) targetList(tl []*pg.Node, sc *scope, ctes *cteScope) []column {
	var cols []column
	for _, t := range tl {
		rt := t.GetResTarget()
		if rt == nil {
			continue
		}
		val := rt.GetVal()
		if cr := val.GetColumnRef(); cr != nil {
			if names, star := columnRefNames(cr); star {
				q := ""
				if len(names) > 0 {
					q = names[len(names)-1]
				}
				cols = append(cols, sc.star(q)...)
				continue
			}
		}
		name := rt.GetName()
		if name == "" {
			name = a.figureColname(val)
		}
		cols = append(cols, column{name: name, sources: a.exprSources(val, sc, ctes)})
	}
	return cols
}

// columnRefNames returns the names of a column reference and whether it ends in *.
func columnRefNames(cr *pg.ColumnRef) ([]string, bool) {
	var names []string
	star := false
	for _, f := range cr.GetFields() {
		switch {
		case f.GetString_() != nil:
			names = append(names, f.GetString_().GetSval())
		case f.GetAStar() != nil:
			star = true
		}
	}
	return names, star
}

func (a *pgAnalysis) fromItem(n *pg.Node, sc *scope, ctes *cteScope) {
	switch {
	case n.GetRangeVar() != nil:
		rv := n.GetRangeVar()
		alias := rv.GetAlias().GetAliasname()
		if rv.GetSchemaname() == "" && rv.GetCatalogname() == "" {
			if cols, ok := ctes.lookup(rv.GetRelname()); ok {
				a.handled[rv] = true
				if alias == "" {
					alias = rv.GetRelname()
				}
				sc.items = append(sc.items, &fromItem{alias: alias, cols: renameCols(cols, rv.GetAlias().GetColnames())})
				return
			}
		}
		a.read(rv)
		if alias == "" {
			alias = rv.GetRelname()
		}
		r := relOf(rv)
		sc.items = append(sc.items, &fromItem{alias: alias, rel: &r, renamed: len(rv.GetAlias().GetColnames()) > 0})
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		// A LATERAL subquery sees the items before it; others do not, but
		// letting them see more only widens the lineage.
		cols := a.selectStmt(rs.GetSubquery().GetSelectStmt(), sc, ctes)
		sc.items = append(sc.items, &fromItem{alias: rs.GetAlias().GetAliasname(), cols: renameCols(cols, rs.GetAlias().GetColnames())})
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		a.fromItem(j.GetLarg(), sc, ctes)
		a.fromItem(j.GetRarg(), sc, ctes)
		a.exprSources(j.GetQuals(), sc, ctes)
	case n.GetRangeFunction() != nil:
		rf := n.GetRangeFunction()
		var refs []ColumnRef
		for _, f := range rf.GetFunctions() {
			refs = appendRefs(refs, a.exprSources(f, sc, ctes)...)
		}
		name := rf.GetAlias().GetAliasname()
		if name == "" {
			// An unaliased function in FROM is named after the function.
			for _, f := range rf.GetFunctions() {
				for _, it := range f.GetList().GetItems() {
					if fc := it.GetFuncCall(); fc != nil && name == "" {
						name = lastName(funcName(fc))
					}
				}
			}
		}
		sc.items = append(sc.items, &fromItem{alias: name, cols: []column{{name: "*", sources: refs, star: true}}})
	case n.GetRangeTableSample() != nil:
		a.fromItem(n.GetRangeTableSample().GetRelation(), sc, ctes)
	default:
		// XMLTABLE, JSON_TABLE and the like: a derived item whose columns come
		// from whatever the expression reads.
		refs := a.exprSources(n, sc, ctes)
		alias := ""
		if m := oneof(n); m != nil {
			if f := m.ProtoReflect().Descriptor().Fields().ByName("alias"); f != nil {
				if al, ok := m.ProtoReflect().Get(f).Message().Interface().(*pg.Alias); ok {
					alias = al.GetAliasname()
				}
			}
		}
		sc.items = append(sc.items, &fromItem{alias: alias, cols: []column{{name: "*", sources: refs, star: true}}})
	}
}

func funcName(fc *pg.FuncCall) string {
	parts := make([]string, 0, len(fc.GetFuncname()))
	for _, p := range fc.GetFuncname() {
		parts = append(parts, strings.ToLower(p.GetString_().GetSval()))
	}
	return strings.Join(parts, ".")
}

// exprSources returns the source columns an expression is derived from and
// analyzes any subquery inside it.
func (a *pgAnalysis) exprSources(n *pg.Node, sc *scope, ctes *cteScope) []ColumnRef {
	if n == nil {
		return nil
	}
	switch {
	case n.GetColumnRef() != nil:
		names, star := columnRefNames(n.GetColumnRef())
		if star {
			// t.* inside an expression (count(t.*), row(t.*)): the whole row.
			q := ""
			if len(names) > 0 {
				q = names[len(names)-1]
			}
			var out []ColumnRef
			for _, c := range sc.star(q) {
				out = appendRefs(out, c.sources...)
			}
			return out
		}
		return sc.resolve(names)
	case n.GetSubLink() != nil:
		sl := n.GetSubLink()
		out := a.exprSources(sl.GetTestexpr(), sc, ctes)
		for _, c := range a.selectStmt(sl.GetSubselect().GetSelectStmt(), sc, ctes) {
			out = appendRefs(out, c.sources...)
		}
		return out
	case n.GetSelectStmt() != nil:
		var out []ColumnRef
		for _, c := range a.selectStmt(n.GetSelectStmt(), sc, ctes) {
			out = appendRefs(out, c.sources...)
		}
		return out
	case n.GetAConst() != nil, n.GetParamRef() != nil, n.GetTypeName() != nil:
		return nil
	}
	// Any other node: the union of what its children read.
	var out []ColumnRef
	m := oneof(n)
	if m == nil {
		return nil
	}
	a.eachChild(m, func(child *pg.Node) {
		out = appendRefs(out, a.exprSources(child, sc, ctes)...)
	})
	return out
}

// eachChild calls f for every Node directly below m, looking through
// non-Node messages (ResTarget, CaseWhen, WindowDef...).
func (a *pgAnalysis) eachChild(m proto.Message, f func(*pg.Node)) {
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		visit := func(x protoreflect.Message) {
			switch c := x.Interface().(type) {
			case *pg.Node:
				f(c)
			case *pg.TypeName, *pg.Alias:
			default:
				a.eachChild(c, f)
			}
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message())
			}
		} else {
			visit(v.Message())
		}
		return true
	})
}

func (a *pgAnalysis) insertStmt(s *pg.InsertStmt, outer *scope, ctes *cteScope) []column {
	ctes = a.withClause(s.GetWithClause(), outer, ctes)
	a.write(s.GetRelation())
	if sel := s.GetSelectStmt(); sel != nil {
		a.selectStmt(sel.GetSelectStmt(), outer, ctes)
	}
	sc := a.targetScope(s.GetRelation(), outer)
	if oc := s.GetOnConflictClause(); oc != nil {
		a.walkExprs(oc.GetTargetList(), sc, ctes)
		a.exprSources(oc.GetWhereClause(), sc, ctes)
	}
	return a.targetList(s.GetReturningList(), sc, ctes)
}

func (a *pgAnalysis) targetScope(rv *pg.RangeVar, outer *scope) *scope {
	if rv == nil {
		return &scope{parent: outer}
	}
	alias := rv.GetAlias().GetAliasname()
	if alias == "" {
		alias = rv.GetRelname()
	}
	r := relOf(rv)
	return &scope{parent: outer, items: []*fromItem{{alias: alias, rel: &r}}}
}

func (a *pgAnalysis) updateStmt(s *pg.UpdateStmt, outer *scope, ctes *cteScope, top bool) []column {
	ctes = a.withClause(s.GetWithClause(), outer, ctes)
	a.write(s.GetRelation())
	sc := a.targetScope(s.GetRelation(), outer)
	for _, f := range s.GetFromClause() {
		a.fromItem(f, sc, ctes)
	}
	a.walkExprs(s.GetTargetList(), sc, ctes)
	a.where(s.GetWhereClause(), sc, ctes, top)
	return a.targetList(s.GetReturningList(), sc, ctes)
}

func (a *pgAnalysis) deleteStmt(s *pg.DeleteStmt, outer *scope, ctes *cteScope, top bool) []column {
	ctes = a.withClause(s.GetWithClause(), outer, ctes)
	a.write(s.GetRelation())
	sc := a.targetScope(s.GetRelation(), outer)
	for _, f := range s.GetUsingClause() {
		a.fromItem(f, sc, ctes)
	}
	a.where(s.GetWhereClause(), sc, ctes, top)
	return a.targetList(s.GetReturningList(), sc, ctes)
}

// where records HasWhere and WhereAlwaysTrue. For a nested UPDATE or DELETE
// (in a CTE) a missing or trivially true WHERE is recorded too: the
// statement as a whole then changes every row of that table.
func (a *pgAnalysis) where(w *pg.Node, sc *scope, ctes *cteScope, top bool) {
	if w == nil {
		if !top {
			a.st.WhereAlwaysTrue = true
		}
		return
	}
	a.exprSources(w, sc, ctes)
	if top {
		a.st.HasWhere = true
	}
	if v, known := a.truth(w); known && v {
		a.st.WhereAlwaysTrue = true
	}
}

func (a *pgAnalysis) mergeStmt(s *pg.MergeStmt, outer *scope, ctes *cteScope) []column {
	ctes = a.withClause(s.GetWithClause(), outer, ctes)
	a.write(s.GetRelation())
	sc := a.targetScope(s.GetRelation(), outer)
	a.fromItem(s.GetSourceRelation(), sc, ctes)
	a.exprSources(s.GetJoinCondition(), sc, ctes)
	a.walkExprs(s.GetMergeWhenClauses(), sc, ctes)
	return a.targetList(s.GetReturningList(), sc, ctes)
}

// limit returns the constant LIMIT of a top-level SELECT, or -1.
func (a *pgAnalysis) limit(s *pg.SelectStmt) int64 {
	lc := s.GetLimitCount()
	if lc == nil {
		return -1
	}
	for lc.GetTypeCast() != nil {
		lc = lc.GetTypeCast().GetArg()
	}
	c := lc.GetAConst()
	if c == nil {
		return -1
	}
	a.sensitive = true
	if c.GetIsnull() {
		return -1
	}
	if iv := c.GetIval(); iv != nil {
		return int64(iv.GetIval())
	}
	if fv := c.GetFval(); fv != nil {
		if f, err := strconv.ParseFloat(strings.ReplaceAll(fv.GetFval(), "_", ""), 64); err == nil && f >= 0 {
			return int64(f + 0.5)
		}
	}
	return -1
}

// truth evaluates an expression that needs no row: known is false when its
// value depends on data.
func (a *pgAnalysis) truth(n *pg.Node) (value, known bool) {
	switch {
	case n == nil:
		return false, false
	case n.GetBoolExpr() != nil:
		b := n.GetBoolExpr()
		switch b.GetBoolop() {
		case pg.BoolExprType_AND_EXPR:
			all := true
			for _, x := range b.GetArgs() {
				v, k := a.truth(x)
				if k && !v {
					return false, true
				}
				all = all && k
			}
			return true, all
		case pg.BoolExprType_OR_EXPR:
			all := true
			for _, x := range b.GetArgs() {
				v, k := a.truth(x)
				if k && v {
					return true, true
				}
				all = all && k
			}
			return false, all
		case pg.BoolExprType_NOT_EXPR:
			if len(b.GetArgs()) == 1 {
				v, k := a.truth(b.GetArgs()[0])
				return !v, k
			}
		}
		return false, false
	case n.GetAConst() != nil:
		c := n.GetAConst()
		a.sensitive = true
		switch {
		case c.GetIsnull():
			return false, true
		case c.GetBoolval() != nil:
			return c.GetBoolval().GetBoolval(), true
		case c.GetIval() != nil:
			return c.GetIval().GetIval() != 0, true
		case c.GetSval() != nil:
			return parseBoolText(c.GetSval().GetSval())
		}
		return false, false
	case n.GetTypeCast() != nil:
		return a.truth(n.GetTypeCast().GetArg())
	case n.GetNullTest() != nil:
		nt := n.GetNullTest()
		if v, ok := a.constant(nt.GetArg()); ok {
			isNull := v == nil
			if nt.GetNulltesttype() == pg.NullTestType_IS_NULL {
				return isNull, true
			}
			return !isNull, true
		}
		return false, false
	case n.GetSubLink() != nil:
		sl := n.GetSubLink()
		if sl.GetSubLinkType() == pg.SubLinkType_EXISTS_SUBLINK {
			s := sl.GetSubselect().GetSelectStmt()
			if s != nil && len(s.GetFromClause()) == 0 && s.GetWhereClause() == nil && s.GetHavingClause() == nil && s.GetLimitCount() == nil && len(s.GetValuesLists()) == 0 {
				return true, true
			}
		}
		return false, false
	case n.GetAExpr() != nil:
		return a.aexprTruth(n.GetAExpr())
	}
	return false, false
}

func (a *pgAnalysis) aexprTruth(e *pg.A_Expr) (bool, bool) {
	op := ""
	if len(e.GetName()) > 0 {
		op = e.GetName()[len(e.GetName())-1].GetString_().GetSval()
	}
	switch e.GetKind() {
	case pg.A_Expr_Kind_AEXPR_OP:
		if sameColumn(e.GetLexpr(), e.GetRexpr()) {
			// x = x holds for every row where x is not null.
			switch op {
			case "=", ">=", "<=":
				return true, true
			case "<>", "!=", "<", ">":
				return false, true
			}
		}
		// The right side is looked at only when the left is a constant, so
		// "id = 5" never reads its literal and stays shareable in the cache.
		l, lok := a.constant(e.GetLexpr())
		if !lok {
			return false, false
		}
		r, rok := a.constant(e.GetRexpr())
		if !rok {
			return false, false
		}
		return compareConst(op, l, r)
	case pg.A_Expr_Kind_AEXPR_DISTINCT, pg.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		l, lok := a.constant(e.GetLexpr())
		if !lok {
			return false, false
		}
		r, rok := a.constant(e.GetRexpr())
		if !rok {
			return false, false
		}
		same := fmt.Sprint(l) == fmt.Sprint(r)
		if e.GetKind() == pg.A_Expr_Kind_AEXPR_DISTINCT {
			return !same, true
		}
		return same, true
	case pg.A_Expr_Kind_AEXPR_IN:
		l, lok := a.constant(e.GetLexpr())
		if !lok {
			return false, false
		}
		for _, x := range e.GetRexpr().GetList().GetItems() {
			r, rok := a.constant(x)
			if !rok {
				return false, false
			}
			if v, k := compareConst("=", l, r); k && v {
				return op == "=", true
			}
		}
		return op != "=", true
	case pg.A_Expr_Kind_AEXPR_LIKE, pg.A_Expr_Kind_AEXPR_ILIKE:
		// x LIKE '%' matches every non-null value.
		r, rok := a.constant(e.GetRexpr())
		if s, ok := r.(string); rok && ok && s != "" && strings.Trim(s, "%") == "" {
			return op == "~~" || op == "~~*", true
		}
		l, lok := a.constant(e.GetLexpr())
		if lok && rok && fmt.Sprint(l) == fmt.Sprint(r) && !strings.ContainsAny(fmt.Sprint(r), "%_\\") {
			return op == "~~" || op == "~~*", true
		}
		return false, false
	case pg.A_Expr_Kind_AEXPR_BETWEEN, pg.A_Expr_Kind_AEXPR_NOT_BETWEEN:
		x, xok := a.constant(e.GetLexpr())
		if !xok {
			return false, false
		}
		items := e.GetRexpr().GetList().GetItems()
		if len(items) != 2 {
			return false, false
		}
		lo, lok := a.constant(items[0])
		hi, hok := a.constant(items[1])
		if !lok || !hok {
			return false, false
		}
		v1, k1 := compareConst(">=", x, lo)
		v2, k2 := compareConst("<=", x, hi)
		if !k1 || !k2 {
			return false, false
		}
		in := v1 && v2
		if e.GetKind() == pg.A_Expr_Kind_AEXPR_NOT_BETWEEN {
			return !in, true
		}
		return in, true
	}
	return false, false
}

func sameColumn(l, r *pg.Node) bool {
	lc, rc := l.GetColumnRef(), r.GetColumnRef()
	if lc == nil || rc == nil {
		return false
	}
	ln, ls := columnRefNames(lc)
	rn, rs := columnRefNames(rc)
	return !ls && !rs && strings.Join(ln, ".") == strings.Join(rn, ".")
}

// constant evaluates a constant expression: nil (NULL), int64, float64,
// bool or string. ok is false when the value is not a constant.
func (a *pgAnalysis) constant(n *pg.Node) (any, bool) {
	switch {
	case n == nil:
		return nil, false
	case n.GetAConst() != nil:
		a.sensitive = true
		c := n.GetAConst()
		switch {
		case c.GetIsnull():
			return nil, true
		case c.GetIval() != nil:
			return int64(c.GetIval().GetIval()), true
		case c.GetFval() != nil:
			f, err := strconv.ParseFloat(strings.ReplaceAll(c.GetFval().GetFval(), "_", ""), 64)
			return f, err == nil
		case c.GetBoolval() != nil:
			return c.GetBoolval().GetBoolval(), true
		case c.GetSval() != nil:
			return c.GetSval().GetSval(), true
		case c.GetBsval() != nil:
			return c.GetBsval().GetBsval(), true
		}
	case n.GetTypeCast() != nil:
		return a.constant(n.GetTypeCast().GetArg())
	case n.GetAExpr() != nil && n.GetAExpr().GetKind() == pg.A_Expr_Kind_AEXPR_OP:
		e := n.GetAExpr()
		op := ""
		if len(e.GetName()) > 0 {
			op = e.GetName()[len(e.GetName())-1].GetString_().GetSval()
		}
		if e.GetLexpr() == nil {
			r, ok := a.constant(e.GetRexpr())
			if ri, isInt := r.(int64); ok && isInt && op == "-" {
				return -ri, true
			}
			return nil, false
		}
		l, lok := a.constant(e.GetLexpr())
		if !lok {
			return nil, false
		}
		r, rok := a.constant(e.GetRexpr())
		li, lInt := l.(int64)
		ri, rInt := r.(int64)
		if !lok || !rok || !lInt || !rInt {
			if lok && rok && op == "||" {
				if ls, ok := l.(string); ok {
					if rs, ok := r.(string); ok {
						return ls + rs, true
					}
				}
			}
			return nil, false
		}
		switch op {
		case "+":
			return li + ri, true
		case "-":
			return li - ri, true
		case "*":
			return li * ri, true
		case "/":
			if ri != 0 {
				return li / ri, true
			}
		case "%":
			if ri != 0 {
				return li % ri, true
			}
		}
	case n.GetBoolExpr() != nil:
		v, k := a.truth(n)
		return v, k
	}
	return nil, false
}

// compareConst compares two constants the way the database would for the
// common cases; unknown combinations are not known.
func compareConst(op string, l, r any) (bool, bool) {
	if l == nil || r == nil {
		return false, true // comparisons with NULL are never true
	}
	var c int
	switch lv := l.(type) {
	case int64:
		switch rv := r.(type) {
		case int64:
			c = cmp3(float64(lv), float64(rv))
		case float64:
			c = cmp3(float64(lv), rv)
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(rv), 64)
			if err != nil {
				return false, false
			}
			c = cmp3(float64(lv), f)
		default:
			return false, false
		}
	case float64:
		switch rv := r.(type) {
		case int64:
			c = cmp3(lv, float64(rv))
		case float64:
			c = cmp3(lv, rv)
		default:
			return false, false
		}
	case string:
		switch rv := r.(type) {
		case string:
			c = strings.Compare(lv, rv)
		case int64:
			f, err := strconv.ParseFloat(strings.TrimSpace(lv), 64)
			if err != nil {
				return false, false
			}
			c = cmp3(f, float64(rv))
		case bool:
			b, ok := parseBoolText(lv)
			if !ok {
				return false, false
			}
			c = cmp3(b2f(b), b2f(rv))
		default:
			return false, false
		}
	case bool:
		switch rv := r.(type) {
		case bool:
			c = cmp3(b2f(lv), b2f(rv))
		case string:
			b, ok := parseBoolText(rv)
			if !ok {
				return false, false
			}
			c = cmp3(b2f(lv), b2f(b))
		default:
			return false, false
		}
	default:
		return false, false
	}
	switch op {
	case "=", "==", "<=>":
		return c == 0, true
	case "<>", "!=":
		return c != 0, true
	case "<":
		return c < 0, true
	case ">":
		return c > 0, true
	case "<=":
		return c <= 0, true
	case ">=":
		return c >= 0, true
	}
	return false, false
}

func cmp3(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// figureColname names an output column as PostgreSQL does (FigureColname).
func (a *pgAnalysis) figureColname(n *pg.Node) string {
	name, _ := figure(n)
	if name == "" {
		return "?column?"
	}
	return name
}

// figure returns a name and its strength: 2 for a column or function name,
// 1 for a fallback such as a type name or "case".
func figure(n *pg.Node) (string, int) {
	switch {
	case n == nil:
		return "", 0
	case n.GetColumnRef() != nil:
		names, star := columnRefNames(n.GetColumnRef())
		if !star && len(names) > 0 {
			return names[len(names)-1], 2
		}
	case n.GetAIndirection() != nil:
		ind := n.GetAIndirection().GetIndirection()
		for i := len(ind) - 1; i >= 0; i-- {
			if s := ind[i].GetString_(); s != nil {
				return s.GetSval(), 2
			}
		}
		return figure(n.GetAIndirection().GetArg())
	case n.GetFuncCall() != nil:
		fn := n.GetFuncCall().GetFuncname()
		if len(fn) > 0 {
			return fn[len(fn)-1].GetString_().GetSval(), 2
		}
	case n.GetAExpr() != nil:
		if n.GetAExpr().GetKind() == pg.A_Expr_Kind_AEXPR_NULLIF {
			return "nullif", 2
		}
	case n.GetTypeCast() != nil:
		name, s := figure(n.GetTypeCast().GetArg())
		if s <= 1 {
			tn := n.GetTypeCast().GetTypeName().GetNames()
			if len(tn) > 0 {
				return tn[len(tn)-1].GetString_().GetSval(), 1
			}
		}
		return name, s
	case n.GetCollateClause() != nil:
		return figure(n.GetCollateClause().GetArg())
	case n.GetGroupingFunc() != nil:
		return "grouping", 2
	case n.GetMergeSupportFunc() != nil:
		return "merge_action", 2
	case n.GetSubLink() != nil:
		sl := n.GetSubLink()
		switch sl.GetSubLinkType() {
		case pg.SubLinkType_EXISTS_SUBLINK:
			return "exists", 2
		case pg.SubLinkType_ARRAY_SUBLINK:
			return "array", 2
		case pg.SubLinkType_EXPR_SUBLINK:
			s := sl.GetSubselect().GetSelectStmt()
			for s != nil && s.GetOp() != pg.SetOperation_SETOP_NONE && s.GetOp() != pg.SetOperation_SET_OPERATION_UNDEFINED {
				s = s.GetLarg()
			}
			if tl := s.GetTargetList(); len(tl) == 1 {
				rt := tl[0].GetResTarget()
				if rt.GetName() != "" {
					return rt.GetName(), 2
				}
				return figure(rt.GetVal())
			}
		}
	case n.GetCaseExpr() != nil:
		name, s := figure(n.GetCaseExpr().GetDefresult())
		if s <= 1 {
			return "case", 1
		}
		return name, s
	case n.GetAArrayExpr() != nil:
		return "array", 2
	case n.GetRowExpr() != nil:
		return "row", 2
	case n.GetCoalesceExpr() != nil:
		return "coalesce", 2
	case n.GetMinMaxExpr() != nil:
		if n.GetMinMaxExpr().GetOp() == pg.MinMaxOp_IS_GREATEST {
			return "greatest", 2
		}
		return "least", 2
	case n.GetSqlvalueFunction() != nil:
		return sqlValueFunctionName(n.GetSqlvalueFunction().GetOp()), 2
	case n.GetXmlExpr() != nil:
		return strings.ToLower(strings.TrimPrefix(n.GetXmlExpr().GetOp().String(), "IS_")), 2
	case n.GetXmlSerialize() != nil:
		return "xmlserialize", 2
	case n.GetJsonObjectConstructor() != nil:
		return "json_object", 2
	case n.GetJsonArrayConstructor() != nil, n.GetJsonArrayQueryConstructor() != nil:
		return "json_array", 2
	case n.GetJsonObjectAgg() != nil:
		return "json_objectagg", 2
	case n.GetJsonArrayAgg() != nil:
		return "json_arrayagg", 2
	case n.GetJsonFuncExpr() != nil:
		return strings.ToLower(strings.TrimPrefix(n.GetJsonFuncExpr().GetOp().String(), "JSON_")), 2
	}
	return "", 0
}

func sqlValueFunctionName(op pg.SQLValueFunctionOp) string {
	s := strings.ToLower(strings.TrimPrefix(op.String(), "SVFOP_"))
	s = strings.TrimSuffix(s, "_n")
	return s
}

// finish walks the whole tree once: every function call is recorded (and its
// danger), every relation the structural pass did not place is a read, and
// every data-modifying statement it did not see makes the statement a write.
func (a *pgAnalysis) finish(root *pg.Node) {
	var walk func(m protoreflect.Message, skipWrites bool)
	walk = func(m protoreflect.Message, skipWrites bool) {
		switch x := m.Interface().(type) {
		case *pg.RangeVar:
			if !a.handled[x] {
				a.st.Reads = appendRel(a.st.Reads, relOf(x))
			}
		case *pg.FuncCall:
			name := funcName(x)
			a.st.Functions = appendString(a.st.Functions, name)
			if d, ok := dangerousFunctions[lastName(name)]; ok {
				a.danger(d)
			}
		case *pg.InsertStmt, *pg.UpdateStmt, *pg.DeleteStmt, *pg.MergeStmt:
			if !a.handledDML[x] && !skipWrites && m.Interface() != oneof(root) {
				a.danger(HiddenWrite)
				a.raise(Write)
			}
		case *pg.Node:
			if a.notExecuted[x] {
				skipWrites = true
			}
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind {
				return true
			}
			if fd.IsList() {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message(), skipWrites)
				}
			} else {
				walk(v.Message(), skipWrites)
			}
			return true
		})
	}
	walk(root.ProtoReflect(), false)
	if a.st.Effect == Read && (len(a.st.Writes) > 0) {
		a.raise(Write)
	}
}

// untrustedLanguage reports whether code in language l runs with the server's
// operating-system rights.
func untrustedLanguage(l string) bool {
	switch strings.ToLower(l) {
	case "c", "internal", "plpythonu", "plpython2u", "plpython3u", "plperlu", "pltclu", "plsh", "plrust", "plv8u", "pljavau":
		return true
	}
	return false
}

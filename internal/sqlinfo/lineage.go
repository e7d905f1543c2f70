package sqlinfo

// Dialect-neutral pieces of lineage: the columns a FROM item provides and how a
// column reference resolves against the items in scope.

// column is an output column while it is being derived.
type column struct {
	name    string
	sources []ColumnRef
	star    bool
}

// fromItem is one entry of a FROM clause (a table, a subquery, a CTE
// reference or a function) as seen by column references.
type fromItem struct {
	alias string    // the name a qualified reference uses
	rel   *Relation // set for a base relation
	// renamed is true when the FROM clause renamed the base relation's
	// columns (users AS u(a, b)); the new names cannot be mapped back.
	renamed bool
	cols    []column // the columns of a derived item
}

// scope is the FROM items visible at one query level.
type scope struct {
	items  []*fromItem
	parent *scope
}

func (it *fromItem) wholeRow() []ColumnRef {
	if it.rel != nil {
		return []ColumnRef{{Relation: *it.rel, Column: "*"}}
	}
	var out []ColumnRef
	for _, c := range it.cols {
		out = appendRefs(out, c.sources...)
	}
	return out
}

// column resolves column name c in the item; ok is false when a derived item
// has no such column.
func (it *fromItem) column(c string) ([]ColumnRef, bool) {
	if it.rel != nil {
		if it.renamed {
			return []ColumnRef{{Relation: *it.rel, Column: "*"}}, true
		}
		return []ColumnRef{{Relation: *it.rel, Column: c}}, true
	}
	for _, col := range it.cols {
		if !col.star && col.name == c {
			return col.sources, true
		}
	}
	var out []ColumnRef
	found := false
	for _, col := range it.cols {
		if !col.star {
			continue
		}
		found = true
		for _, s := range col.sources {
			if s.Column == "*" {
				out = appendRefs(out, ColumnRef{Relation: s.Relation, Column: c})
			} else {
				out = appendRefs(out, s)
			}
		}
	}
	return out, found
}

// resolve finds the sources of a column reference written as names
// (column, table.column, schema.table.column or catalog.schema.table.column).
func (sc *scope) resolve(names []string) []ColumnRef {
	if len(names) == 0 {
		return nil
	}
	c := names[len(names)-1]
	if len(names) == 1 {
		for s := sc; s != nil; s = s.parent {
			// A bare name that names a FROM item is taken as a whole-row
			// reference, as in row_to_json(u): the catalog would be needed
			// to tell it from a column of the same name, and the whole row
			// is the safe reading.
			for _, it := range s.items {
				if it.alias == c {
					return it.wholeRow()
				}
			}
			var out []ColumnRef
			matched := false
			for _, it := range s.items {
				// Without the catalog we cannot tell which table owns an
				// unqualified column: every candidate is named.
				if refs, ok := it.column(c); ok {
					matched = true
					out = appendRefs(out, refs...)
				}
			}
			if matched {
				return out
			}
		}
		return nil
	}
	tbl := names[len(names)-2]
	schema := ""
	if len(names) >= 3 {
		schema = names[len(names)-3]
	}
	for s := sc; s != nil; s = s.parent {
		for _, it := range s.items {
			if it.alias != tbl {
				continue
			}
			if schema != "" && (it.rel == nil || it.rel.Schema != schema) {
				continue
			}
			refs, _ := it.column(c)
			return refs
		}
	}
	// table.column did not name a FROM item: it may be a composite column
	// and a field; fall back to the first name as a column.
	return sc.resolve(names[:1])
}

// star expands `*` (qualifier "") or `t.*`.
func (sc *scope) star(qualifier string) []column {
	var items []*fromItem
	if sc != nil {
		for s := sc; s != nil; s = s.parent {
			for _, it := range s.items {
				if qualifier == "" || it.alias == qualifier {
					items = append(items, it)
				}
			}
			if len(items) > 0 || qualifier == "" {
				break
			}
		}
	}
	expandable := true
	for _, it := range items {
		if it.rel != nil {
			expandable = false
		}
		for _, c := range it.cols {
			if c.star {
				expandable = false
			}
		}
	}
	if expandable && len(items) > 0 {
		var out []column
		for _, it := range items {
			out = append(out, it.cols...)
		}
		return out
	}
	var refs []ColumnRef
	for _, it := range items {
		refs = appendRefs(refs, it.wholeRow()...)
	}
	return []column{{name: "*", sources: refs, star: true}}
}

func appendRefs(dst []ColumnRef, refs ...ColumnRef) []ColumnRef {
	if len(dst)*len(refs) > 256 {
		// Large lists (a column over hundreds of tables) dedupe by set, so
		// crafted text cannot make the analysis quadratic.
		seen := make(map[ColumnRef]bool, len(dst)+len(refs))
		for _, d := range dst {
			seen[d] = true
		}
		for _, r := range refs {
			if !seen[r] {
				seen[r] = true
				dst = append(dst, r)
			}
		}
		return dst
	}
outer:
	for _, r := range refs {
		for _, d := range dst {
			if d == r {
				continue outer
			}
		}
		dst = append(dst, r)
	}
	return dst
}

func appendRel(dst []Relation, r Relation) []Relation {
	for _, d := range dst {
		if d == r {
			return dst
		}
	}
	return append(dst, r)
}

func appendDanger(dst []Danger, d Danger) []Danger {
	for _, x := range dst {
		if x == d {
			return dst
		}
	}
	return append(dst, d)
}

func appendString(dst []string, s string) []string {
	for _, x := range dst {
		if x == s {
			return dst
		}
	}
	return append(dst, s)
}

// mergeUnion combines the columns of the arms of a UNION, INTERSECT or
// EXCEPT: names from the left arm, sources from both, position by position.
func mergeUnion(l, r []column) []column {
	hasStar := false
	for _, c := range l {
		hasStar = hasStar || c.star
	}
	for _, c := range r {
		hasStar = hasStar || c.star
	}
	if hasStar || len(l) != len(r) {
		var refs []ColumnRef
		for _, c := range l {
			refs = appendRefs(refs, c.sources...)
		}
		for _, c := range r {
			refs = appendRefs(refs, c.sources...)
		}
		return []column{{name: "*", sources: refs, star: true}}
	}
	out := make([]column, len(l))
	for i := range l {
		out[i] = column{name: l[i].name, sources: appendRefs(append([]ColumnRef(nil), l[i].sources...), r[i].sources...)}
	}
	return out
}

func toOutput(cols []column) []OutputColumn {
	if len(cols) == 0 {
		return nil
	}
	out := make([]OutputColumn, len(cols))
	for i, c := range cols {
		out[i] = OutputColumn{Name: c.name, Sources: c.sources, Star: c.star}
		if c.star {
			out[i].Name = ""
		}
	}
	return out
}

// Function names whose call is a danger, matched on the unqualified name.
var dangerousFunctions = map[string]Danger{
	// server files
	"pg_read_file": FileAccess, "pg_read_binary_file": FileAccess, "pg_ls_dir": FileAccess,
	"pg_stat_file": FileAccess, "pg_ls_logdir": FileAccess, "pg_ls_waldir": FileAccess,
	"pg_ls_tmpdir": FileAccess, "pg_ls_archive_statusdir": FileAccess, "pg_ls_logicalsnapdir": FileAccess,
	"pg_ls_logicalmapdir": FileAccess, "pg_ls_replslotdir": FileAccess,
	"lo_import": FileAccess, "lo_export": FileAccess, "pg_file_write": FileAccess,
	"pg_file_rename": FileAccess, "pg_file_unlink": FileAccess, "pg_logdir_ls": FileAccess,
	"pg_file_sync": FileAccess,
	"load_file":    FileAccess, // MySQL
	// remote access
	"dblink": RemoteAccess, "dblink_exec": RemoteAccess, "dblink_connect": RemoteAccess,
	"dblink_connect_u": RemoteAccess, "dblink_send_query": RemoteAccess, "dblink_open": RemoteAccess,
	"dblink_fetch": RemoteAccess, "dblink_get_result": RemoteAccess,
	// SQL run from a string: hides relations and writes from the analyzer
	"query_to_xml": DynamicSQL, "query_to_xmlschema": DynamicSQL, "query_to_xml_and_xmlschema": DynamicSQL,
	"table_to_xml": DynamicSQL, "table_to_xmlschema": DynamicSQL, "table_to_xml_and_xmlschema": DynamicSQL,
	"cursor_to_xml": DynamicSQL, "schema_to_xml": DynamicSQL, "schema_to_xml_and_xmlschema": DynamicSQL,
	"database_to_xml": DynamicSQL, "database_to_xml_and_xmlschema": DynamicSQL,
	// session and privilege
	"set_config": SessionChange,
	// side effects
	"setval": SideEffectFunction, "nextval": SideEffectFunction, "pg_terminate_backend": SideEffectFunction,
	"pg_cancel_backend": SideEffectFunction, "pg_reload_conf": SideEffectFunction, "pg_rotate_logfile": SideEffectFunction,
	"pg_switch_wal": SideEffectFunction, "pg_create_restore_point": SideEffectFunction, "pg_promote": SideEffectFunction,
	"pg_backup_start": SideEffectFunction, "pg_backup_stop": SideEffectFunction,
	"pg_create_physical_replication_slot": SideEffectFunction, "pg_create_logical_replication_slot": SideEffectFunction,
	"pg_drop_replication_slot": SideEffectFunction, "pg_logical_emit_message": SideEffectFunction,
	"pg_advisory_lock": SideEffectFunction, "pg_advisory_xact_lock": SideEffectFunction,
	"pg_try_advisory_lock": SideEffectFunction, "pg_advisory_unlock_all": SideEffectFunction,
	"pg_notify": SideEffectFunction, "pg_sleep": SideEffectFunction, "pg_sleep_for": SideEffectFunction,
	"pg_sleep_until": SideEffectFunction, "lo_unlink": SideEffectFunction, "lo_create": SideEffectFunction,
	"lo_creat": SideEffectFunction, "lo_put": SideEffectFunction, "lo_from_bytea": SideEffectFunction,
	"pg_stat_reset": SideEffectFunction, "pg_stat_reset_shared": SideEffectFunction,
	"pg_stat_reset_single_table_counters": SideEffectFunction, "pg_import_system_collations": SideEffectFunction,
	"txid_current": SideEffectFunction,
	// MySQL
	"sleep": SideEffectFunction, "benchmark": SideEffectFunction, "get_lock": SideEffectFunction,
	"release_lock": SideEffectFunction, "release_all_locks": SideEffectFunction,
	"sys_exec": ProgramExecution, "sys_eval": ProgramExecution,
}

func lastName(qualified string) string {
	for i := len(qualified) - 1; i >= 0; i-- {
		if qualified[i] == '.' {
			return qualified[i+1:]
		}
	}
	return qualified
}

package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// The audit trail's columns, in the order both stores insert and scan them.
const auditColumns = `at, actor, action, program_id, execution_id, outcome, code, reason, detail, delivery`

// auditQuery is the SELECT of AuditRecords for f, with its arguments; arg
// writes a placeholder for the n-th argument (SQLite's ?, Postgres's $n)
// and time turns a time into the store's argument.
func auditQuery(f bot.AuditFilter, arg func(n int) string, dbt func(time.Time) any) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, arg(len(args))))
	}
	if f.ProgramIDs != nil {
		var or []string
		var in []string
		for _, id := range f.ProgramIDs {
			args = append(args, id)
			in = append(in, arg(len(args)))
		}
		if len(in) > 0 {
			or = append(or, "program_id IN ("+strings.Join(in, ", ")+")")
		}
		if f.OwnBy != "" {
			args = append(args, f.OwnBy)
			or = append(or, "(program_id = 0 AND LOWER(actor) = LOWER("+arg(len(args))+"))")
		}
		if len(or) == 0 {
			or = append(or, "1 = 0")
		}
		where = append(where, "("+strings.Join(or, " OR ")+")")
	}
	if f.ExecutionID != 0 {
		add("execution_id = %s", f.ExecutionID)
	}
	if f.Actor != "" {
		add("LOWER(actor) = LOWER(%s)", f.Actor)
	}
	if f.Action != "" {
		add("action = %s", string(f.Action))
	}
	if !f.Since.IsZero() {
		add("at >= %s", dbt(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < %s", dbt(f.Until))
	}
	order := "DESC"
	if f.Oldest {
		order = "ASC"
		if f.After != 0 {
			add("id > %s", f.After)
		}
	} else if f.After != 0 {
		add("id < %s", f.After)
	}
	q := "SELECT id, " + auditColumns + " FROM audit_records"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id " + order
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return q, args
}

// auditArgs are a record's values in auditColumns' order.
func auditArgs(r bot.AuditRecord, at any) []any {
	return []any{at, r.Actor, string(r.Action), r.ProgramID, r.ExecutionID, string(r.Outcome), r.Code, r.Reason, r.Detail, r.Delivery}
}

// scanAudit scans a row of auditQuery; at scans the time.
func scanAudit(row rowScanner, at func(*time.Time) any) (bot.AuditRecord, error) {
	var r bot.AuditRecord
	var action, outcome string
	err := row.Scan(&r.ID, at(&r.At), &r.Actor, &action, &r.ProgramID, &r.ExecutionID, &outcome, &r.Code, &r.Reason, &r.Detail, &r.Delivery)
	r.Action, r.Outcome = bot.AuditAction(action), bot.AuditOutcome(outcome)
	return r, err
}

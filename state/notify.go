package state

import (
	"fmt"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// notifyColumns are the notifications table's columns but id.
const notifyColumns = `program_id, execution_id, target, target_type, url_secret, signing_secret, event, detail, delivery, created_at, state, attempts, next_at, error`

// notifyQueries are the outbox's statements; arg writes the n-th
// placeholder (SQLite's ?, Postgres's $n).
type notifyQueries struct{ insert, due, record, of, claim string }

func newNotifyQueries(arg func(n int) string) notifyQueries {
	var ph string
	for i := 1; i <= 14; i++ {
		if i > 1 {
			ph += ", "
		}
		ph += arg(i)
	}
	sel := "SELECT id, " + notifyColumns + " FROM notifications"
	return notifyQueries{
		insert: "INSERT INTO notifications (" + notifyColumns + ") VALUES (" + ph + ")",
		due:    fmt.Sprintf("%s WHERE state = '%s' AND next_at <= %s ORDER BY next_at, id LIMIT %s", sel, bot.NotificationPending, arg(1), arg(2)),
		record: fmt.Sprintf("UPDATE notifications SET state = %s, attempts = %s, next_at = COALESCE(%s, next_at), error = %s WHERE id = %s", arg(1), arg(2), arg(3), arg(4), arg(5)),
		of:     sel + " WHERE execution_id = " + arg(1) + " ORDER BY id",
		claim: fmt.Sprintf("UPDATE notifications SET next_at = %s WHERE id = %s AND state = '%s' AND attempts = %s AND next_at <= %s",
			arg(1), arg(2), bot.NotificationPending, arg(3), arg(4)),
	}
}

// notifyArgs are n's values in notifyColumns' order; dbt turns a time into
// the store's argument.
func notifyArgs(n bot.Notification, dbt func(time.Time) any) []any {
	t := n.Target
	return []any{n.ProgramID, n.ExecutionID, t.Name, string(t.Type), t.URLSecret, t.SigningSecret, string(n.Event), n.Detail,
		n.Delivery, dbt(n.CreatedAt), string(n.State), n.Attempts, dbt(n.NextAt), n.Error}
}

// scanNotification scans a row of the outbox's SELECTs; at scans a time.
func scanNotification(row rowScanner, at func(*time.Time) any) (bot.Notification, error) {
	var n bot.Notification
	var typ, event, st string
	err := row.Scan(&n.ID, &n.ProgramID, &n.ExecutionID, &n.Target.Name, &typ, &n.Target.URLSecret, &n.Target.SigningSecret,
		&event, &n.Detail, &n.Delivery, at(&n.CreatedAt), &st, &n.Attempts, at(&n.NextAt), &n.Error)
	n.Target.Type, n.Event, n.State = bot.NotifyType(typ), bot.NotifyEvent(event), bot.NotificationState(st)
	return n, err
}

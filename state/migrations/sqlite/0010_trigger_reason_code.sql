-- The code of a trigger record's reason (bot.ReasonCode, for example
-- stage-only-priority), beside its words; records kept before have ''.
-- The PostgreSQL migration 0007 adds the same column.

ALTER TABLE trigger_records ADD COLUMN reason_code TEXT NOT NULL DEFAULT '';

-- The engine looks up a program's active executions in every transaction;
-- without this index SQLite scans the program's whole history.
CREATE INDEX executions_program_state ON executions (program_id, state);

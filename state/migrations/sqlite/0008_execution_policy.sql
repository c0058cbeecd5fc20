-- An execution keeps the policy it was created under: .github/stagehand.yml
-- at the head of the repository's default branch (SPEC §3: pipelines,
-- gates, approvers, URLs, variables), apart from config, the file at the
-- commit being built, which supplies only the commands. NULL for
-- executions recorded before this migration: their config was both.
ALTER TABLE executions ADD COLUMN policy BLOB;

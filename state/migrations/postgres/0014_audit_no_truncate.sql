-- TRUNCATE fires no row trigger, so the append-only triggers of 0008 and
-- 0013 did not stop `TRUNCATE audit_records`. A statement trigger refuses
-- it; only the retention pass removes audit records (0013).

CREATE OR REPLACE FUNCTION audit_records_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only: TRUNCATE is refused';
END;
$$;

CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION audit_records_no_truncate();

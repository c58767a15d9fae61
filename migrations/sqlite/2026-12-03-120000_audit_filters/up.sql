-- The audit log filtered by person or by kind of record, newest first, without sorting.
CREATE INDEX audit_log_actor_idx ON audit_log (organization_id, actor_user_id, id);
CREATE INDEX audit_log_type_idx ON audit_log (organization_id, resource_type, id);

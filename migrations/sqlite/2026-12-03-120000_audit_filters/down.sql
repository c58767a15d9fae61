DROP INDEX audit_log_type_idx;
DROP INDEX audit_log_actor_idx;

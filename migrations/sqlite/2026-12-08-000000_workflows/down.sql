DELETE FROM casbin_rules WHERE ptype = 'p' AND v2 = 'workflow';
DROP TABLE workflow_steps;
DROP TABLE workflow_runs;
DROP TABLE workflow_versions;
DROP TABLE workflows;

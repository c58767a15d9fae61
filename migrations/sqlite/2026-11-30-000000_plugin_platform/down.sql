DROP TABLE notifications;
DROP TABLE plugin_trusted_keys;
DROP TABLE plugin_storage;
ALTER TABLE organizations DROP COLUMN plugin_signatures_required;
ALTER TABLE plugin_installs DROP COLUMN signer_key;
ALTER TABLE plugin_installs DROP COLUMN approved_hosts;

ALTER TABLE mail_messages DROP COLUMN list_unsubscribe;
ALTER TABLE mail_messages DROP COLUMN body_html;
DROP TABLE send_recipients;
DROP TABLE sends;
DROP TABLE message_template_versions;
DROP TABLE message_templates;

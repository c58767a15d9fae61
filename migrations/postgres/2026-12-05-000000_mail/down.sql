DELETE FROM casbin_rules WHERE ptype = 'p' AND v2 = 'message';
DROP TABLE mail_message_clients;
DROP TABLE mail_messages;
DROP TABLE mail_folders;
DROP TABLE mailboxes;

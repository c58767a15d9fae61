DROP INDEX send_recipients_by_client;
DROP TABLE segment_sizes;
DROP TABLE segment_dirty;
DROP TABLE segment_events;
DROP TABLE segment_members;
DROP TABLE segments;

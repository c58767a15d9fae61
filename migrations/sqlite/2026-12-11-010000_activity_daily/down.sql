DROP TRIGGER activity_daily_update;
DROP TRIGGER activity_daily_delete;
DROP TRIGGER activity_daily_insert;
DROP TABLE activity_daily;

DROP TRIGGER activity_daily_track ON interactions;
DROP FUNCTION activity_daily_track();
DROP TABLE activity_daily;

DROP TRIGGER activity_daily_delete ON interactions;
DROP TRIGGER activity_daily_update ON interactions;
DROP TRIGGER activity_daily_insert ON interactions;
DROP FUNCTION activity_daily_apply();
DROP TABLE activity_daily;

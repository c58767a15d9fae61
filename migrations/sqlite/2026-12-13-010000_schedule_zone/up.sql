-- The zone a schedule's hour is read in: "every Monday at 7" means 7 where the person who
-- set it works, through summer and winter time. Schedules made before keep UTC.
ALTER TABLE report_schedules ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

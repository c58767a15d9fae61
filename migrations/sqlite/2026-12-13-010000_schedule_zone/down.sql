ALTER TABLE report_schedules DROP COLUMN time_zone;

DROP TABLE report_schedules;
DROP TABLE dashboards;
DROP TABLE reports;

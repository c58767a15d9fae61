DROP TABLE contact_preferences;

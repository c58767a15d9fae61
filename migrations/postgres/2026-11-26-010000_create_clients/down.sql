DROP TABLE saved_views;
DROP TABLE custom_field_values;
DROP TABLE custom_fields;
DROP TABLE client_relations;
DROP TABLE client_tags;
DROP TABLE tags;
DROP TABLE clients;

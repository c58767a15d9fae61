DROP TABLE churn_models;

-- Run once by the postgres image when it creates its cluster (POSTGRES_DB creates the database mlflow):
-- the Prefect server's database, owned by POSTGRES_USER, as prac_lth/deployments/stack.py creates it on one machine.
CREATE DATABASE prefect;

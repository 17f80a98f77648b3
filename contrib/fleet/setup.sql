-- PostgreSQL setup for an imipsec fleet (run once as a superuser, e.g. `psql -f setup.sql`).
-- Two roles: imipsec_admin owns the schema and runs `imipsec store init` (creates and
-- migrates tables); imipsec_gate is what the gates and `imipsec delegate` connect as, with
-- row rights only: a compromised gate cannot drop or alter the tables.

CREATE ROLE imipsec_admin LOGIN;      -- then: \password imipsec_admin
CREATE ROLE imipsec_gate LOGIN;       -- then: \password imipsec_gate
CREATE DATABASE imipsec OWNER imipsec_admin;
\connect imipsec
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA imipsec AUTHORIZATION imipsec_admin;
ALTER ROLE imipsec_admin IN DATABASE imipsec SET search_path = imipsec;
ALTER ROLE imipsec_gate IN DATABASE imipsec SET search_path = imipsec;
GRANT USAGE ON SCHEMA imipsec TO imipsec_gate;
-- Tables that `imipsec store init` (as imipsec_admin) creates later get the gate's rights:
ALTER DEFAULT PRIVILEGES FOR ROLE imipsec_admin IN SCHEMA imipsec
    GRANT SELECT, INSERT, UPDATE ON TABLES TO imipsec_gate;
ALTER DEFAULT PRIVILEGES FOR ROLE imipsec_admin IN SCHEMA imipsec
    GRANT USAGE, SELECT ON SEQUENCES TO imipsec_gate;

-- Then, from an admin machine (password from ~/.pgpass or PGPASSWORD, never the URL):
--   imipsec store init --store 'postgresql://imipsec_admin@db.example.net/imipsec?sslmode=require'
-- In pg_hba.conf, allow only the gates' addresses, over TLS, with scram-sha-256:
--   hostssl imipsec imipsec_gate  192.0.2.0/24  scram-sha-256
--   hostssl imipsec imipsec_admin 192.0.2.10/32 scram-sha-256

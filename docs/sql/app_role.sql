-- hsct-pathway: the least-privilege application role (PostgreSQL).
--
-- Run as the owner of the schema's tables (the role that ran `hsct db upgrade`), with the
-- schema on the search_path, e.g.
--     psql "$OWNER_URL" -v ON_ERROR_STOP=1 -f docs/sql/app_role.sql
-- then let the application's login role use it:  GRANT hsct_app TO my_app_login;
-- (To use another name, replace every hsct_app below.)
--
-- The application may append (INSERT entries and outbox rows), open pathways (INSERT
-- pathways), move a pathway (UPDATE of exactly the columns the library moves) and mark
-- outbox deliveries. It may not UPDATE, DELETE or TRUNCATE the log, change a pathway's
-- identity columns, alter tables, or disable the append-only triggers (only the owner can).
-- Pruning delivered outbox rows (Store.outbox_prune) and schema upgrades run as the owner.
--
-- What remains possible with these rights, by design of any append-only log the application
-- writes to: an insider holding this role can still forge the tail of a chain (INSERT new,
-- correctly hashed entries and UPDATE the pathway row to match). Signed checkpoints taken on a
-- cadence and kept off the database host catch that (docs/audit.md, section 2).

CREATE ROLE hsct_app NOLOGIN;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO hsct_app', current_schema());
END
$$;

-- Reading: the schema revision (checked at start-up), pathways, the log, the outbox, the
-- policy registry.
GRANT SELECT ON hsct_alembic_version, pathways, entries, outbox, policies TO hsct_app;

-- Appending: new pathways, entries and their outbox rows (the ids come from sequences), and
-- the service's policy the first time a service starts with it (append-only, like the log).
GRANT INSERT ON pathways, entries, outbox, policies TO hsct_app;
GRANT USAGE ON SEQUENCE entries_id_seq, outbox_id_seq TO hsct_app;

-- Series kept beside the snapshot (lab values, transfusions), which commits to them by a
-- running hash: new values are appended, and a correction that changes an earlier value
-- rewrites that series (DELETE, then INSERT). `audit verify` checks the rows against the
-- snapshot, and the snapshot against the log.
GRANT SELECT, INSERT, DELETE ON fact_series TO hsct_app;

-- Moving a pathway: its head, phase, facts snapshot (with the milestone schedule derived from
-- it) and successor link; nothing else.
GRANT UPDATE (version, head_hash, phase, facts, schedule, updated_at, successor) ON pathways TO hsct_app;

-- Delivering the outbox: the delivery columns only.
GRANT UPDATE (delivered_at, attempts, last_error) ON outbox TO hsct_app;

-- The database's ceiling for a deposit: what eventsourcing's PostgreSQL store
-- sends for one new event, with nothing else (no read of the aggregate's
-- earlier events, no Python, no HTTP). Run by pgbench against the events table
-- that eventsourcing itself created (bankaccounts_events). The table lock
-- orders the notification ids by commit; it serialises the writers.
-- ceiling.py passes the event's topic and state (a real Deposited event's
-- 94 bytes of JSON) with pgbench -D; every row is a new aggregate's.
\set version random(1, 1000000000)
BEGIN;
SET LOCAL lock_timeout = '0s';
LOCK TABLE bankaccounts_events IN EXCLUSIVE MODE;
NOTIFY bankaccounts_events;
INSERT INTO bankaccounts_events (originator_id, originator_version, topic, state)
    VALUES (gen_random_uuid(), :version, :topic, :state)
    RETURNING notification_id;
COMMIT;

-- An execution's end is announced on the stent_finished channel only when a waiter in
-- some process asked for it (backend.Awaiter): most ends (children, executions whose
-- result goes to a waiter in the finishing process) have no one listening for them, and
-- a NOTIFY costs a transaction and wakes every listener.
ALTER TABLE executions ADD COLUMN awaited boolean NOT NULL DEFAULT false;

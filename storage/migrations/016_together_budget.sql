-- The Together request budget shared by every bot process of one account (Together's limit is
-- the account's, not a process's). One row (id 1): the account rate learned so far, requests
-- per second; the pause every process keeps (Unix time, from Retry-After); version, raised by
-- every write, so a rise is a compare-and-set and two processes cannot both raise one value.
-- Each process runs at rate / live processes (storage/together_budget.py).
CREATE TABLE together_budget (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    rate          REAL    NOT NULL,
    paused_until  REAL    NOT NULL,
    version       INTEGER NOT NULL,
    updated_at    REAL    NOT NULL
);

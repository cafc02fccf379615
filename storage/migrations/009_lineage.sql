-- Lineage: the job a job was made from (Retry, Remix, Extend, Join, Animate image, Edit video),
-- how, and for Extend and Join the chain it belongs to (the id of its first part) and its part.
ALTER TABLE jobs ADD COLUMN parent_id INTEGER REFERENCES jobs (id);
ALTER TABLE jobs ADD COLUMN derivation TEXT
    CHECK (derivation IN ('retry', 'remix', 'extend', 'join', 'animate', 'edit'));
ALTER TABLE jobs ADD COLUMN chain_id INTEGER;
ALTER TABLE jobs ADD COLUMN chain_part INTEGER;
CREATE INDEX jobs_chain ON jobs (chain_id, chain_part) WHERE chain_id IS NOT NULL;

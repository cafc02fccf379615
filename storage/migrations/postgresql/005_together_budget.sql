-- SQLite's 016_together_budget.sql: the request budget every process shares (see that file).
CREATE TABLE together_budget (
    id            INTEGER          PRIMARY KEY CHECK (id = 1),
    rate          DOUBLE PRECISION NOT NULL,
    paused_until  DOUBLE PRECISION NOT NULL,
    version       BIGINT           NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);

-- The scheduler: one lease per job (one replica runs it at a time; a lease that
-- expires is taken over), and the run history of automations.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE TABLE automation_runs (
    id BLOB PRIMARY KEY,
    automation_id BLOB NOT NULL,
    org_id BLOB NOT NULL,
    started BIGINT NOT NULL,
    finished BIGINT,
    status TEXT NOT NULL,
    count BIGINT NOT NULL,
    error TEXT,
    details TEXT
);
CREATE INDEX automation_runs_by_automation ON automation_runs (automation_id, started);

-- Deliveries of automations' notifications (webhooks, Slack, PagerDuty): one row per
-- notification with the outcome of its last attempt, so an administrator can see
-- what was sent, when, and why it failed.
CREATE TABLE automation_deliveries (
    id BLOB PRIMARY KEY,
    automation_id BLOB NOT NULL,
    org_id BLOB NOT NULL,
    run_id BLOB,
    created BIGINT NOT NULL,
    finished BIGINT,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    http_status BIGINT,
    error TEXT,
    details TEXT
);
CREATE INDEX automation_deliveries_by_automation ON automation_deliveries (automation_id, created);

-- Now and then (each scheduler tick, at most once a minute) the newest transaction
-- id: which rows were written after a time, without scanning for their creation time.
CREATE TABLE xact_marks (
    at BIGINT PRIMARY KEY,
    xact_id BIGINT NOT NULL
);

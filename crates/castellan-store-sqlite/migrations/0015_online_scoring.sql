-- Online scoring: how far the worker has scored each project's logs (so a restart,
-- or another replica, resumes there), and one claim per (rule, span, scorer) written
-- in the same transaction as the score, so a span is never scored twice.
CREATE TABLE online_scoring_cursors (
    project_id BLOB PRIMARY KEY,
    xact_id BIGINT NOT NULL,
    row_id TEXT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE TABLE online_score_claims (
    key TEXT PRIMARY KEY,
    rule_id BLOB NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX online_score_claims_by_rule ON online_score_claims (rule_id);

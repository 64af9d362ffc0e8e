-- The signing secret of an organization's cost-alert webhook (sealed under the
-- master key, like administration objects' values) and when it was last set.
ALTER TABLE org_plans ADD COLUMN alert_secret BLOB;
ALTER TABLE org_plans ADD COLUMN alert_secret_updated BIGINT;

-- Online scoring. Each row version's span id, so the worker samples new spans by
-- id without reading their contents (null for versions written before this).
ALTER TABLE events ADD COLUMN span_id TEXT;
-- Claims become one per (rule, span): the first 16 bytes of SHA-256 of
-- "<rule id>|<row id>", written with the span's scores; pruned by age.
DROP TABLE online_score_claims;
CREATE TABLE online_score_claims (
    key BLOB PRIMARY KEY,
    rule_id BLOB NOT NULL,
    created BIGINT NOT NULL
) WITHOUT ROWID;
CREATE INDEX online_score_claims_created ON online_score_claims (created);
-- Scorers whose call failed in a way a later one may not (a time-out, 429, 5xx, an
-- answer that does not parse), to be called again after a growing wait, a bounded
-- number of rounds.
CREATE TABLE online_score_retries (
    rule_id BLOB NOT NULL,
    row_id TEXT NOT NULL,
    scorer TEXT NOT NULL,
    project_id BLOB NOT NULL,
    rounds BIGINT NOT NULL,
    next_at BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (rule_id, row_id, scorer)
);
CREATE INDEX online_score_retries_due ON online_score_retries (project_id, next_at);

-- Usage metering and plans (PostgreSQL). `usage_counters` holds one row per organization
-- and UTC day (`period` = 'YYYY-MM-DD') and one per UTC month ('YYYY-MM'), both
-- incremented in the transaction of the write they count; nothing ever lowers them.
CREATE TABLE usage_counters (
    org_id UUID NOT NULL,
    period TEXT NOT NULL,
    processed_bytes BIGINT NOT NULL DEFAULT 0,
    spans BIGINT NOT NULL DEFAULT 0,
    scores BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, period)
);
-- An organization's plan set through the API (it overrides the configured default).
CREATE TABLE org_plans (
    org_id UUID PRIMARY KEY,
    data JSONB NOT NULL,
    updated BIGINT NOT NULL,
    updated_by UUID
);
-- Cost alerts: each threshold of each metric crossed, once per organization and month.
CREATE TABLE usage_alerts (
    org_id UUID NOT NULL,
    period TEXT NOT NULL,
    metric TEXT NOT NULL,
    threshold BIGINT NOT NULL,
    limit_value BIGINT NOT NULL,
    used BIGINT NOT NULL,
    crossed_at BIGINT NOT NULL,
    audited_at BIGINT,
    PRIMARY KEY (org_id, period, metric, threshold)
);
CREATE INDEX usage_alerts_unaudited ON usage_alerts (audited_at, crossed_at);

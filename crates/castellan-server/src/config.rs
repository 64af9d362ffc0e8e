//! Typed configuration: defaults, then a TOML file, then `CASTELLAN_*` environment
//! variables, then command-line flags (the CLI merges the last two with clap and
//! hands the result here as [`Overrides`]). Unknown keys in the file are rejected.

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The server's settings.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the embedded SQLite database and generated secrets live.
    pub data_dir: PathBuf,
    /// `postgres://…` to use PostgreSQL instead of the embedded SQLite file.
    pub database_url: Option<String>,
    /// The URL clients should use to reach this server (sent as `api_url` at login).
    /// Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How often a replica polls the change feed for other replicas' writes.
    pub poll_interval: Duration,
    /// How long a request may wait for `x-castellan-min-revision`.
    pub min_revision_wait: Duration,
    /// `tracing` filter, e.g. `info` or `castellan_server=debug`.
    pub log: String,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// How long a console session lasts at most.
    pub session_ttl: Duration,
    /// Browser origins (`https://console.example.com`) allowed to make credentialed
    /// cross-origin requests (cookies). Default: none. Bearer-token requests are
    /// allowed from any origin, without credentials.
    pub cors_origins: Vec<String>,
    /// The master key that seals secret values (64 hex characters). Never logged.
    pub secret_key: Option<String>,
    /// A file holding the master key (64 hex characters).
    pub secret_key_file: Option<PathBuf>,
    /// Earlier master keys (64 hex characters each): they open values sealed before
    /// a rotation and never seal. Never logged.
    pub secret_keys_previous: Vec<String>,
    /// Private, loopback or link-local destinations outbound requests (webhooks,
    /// Slack, AI providers) may reach anyway: IP addresses, CIDR blocks or host
    /// names. Default: none (every such destination is refused).
    pub outbound_allow: Vec<String>,
    /// Slack's Web API base URL (`chat.postMessage` is called below it).
    pub slack_api_url: String,
    /// PagerDuty's Events API base URL (`/v2/enqueue` is called below it).
    pub pagerduty_api_url: String,
    /// How many times a notification is attempted before it is recorded as failed.
    pub webhook_attempts: u32,
    /// The wait before the second attempt; it doubles for each later one.
    pub webhook_backoff: Duration,
    /// How long one outbound request may take.
    pub webhook_timeout: Duration,
    /// How often the scheduler looks for due automations.
    pub scheduler_tick: Duration,
    /// Count usage (bytes, spans, scores) per organization and day in every write.
    pub usage_metering: bool,
    /// The plan of every organization that was not given one through the API.
    pub plan_limits: PlanLimitsConfig,
}

/// The default plan (`[plan_limits]` in the file): monthly limits, how they are
/// enforced, and the cost-alert thresholds. Every key is optional: no limit means
/// unlimited, `enforcement` defaults to `soft`, `alert_thresholds` to 50, 75, 90, 100.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimitsConfig {
    /// Processed bytes per month.
    pub processed_bytes: Option<i64>,
    /// Spans (row versions) per month.
    pub spans: Option<i64>,
    /// Scores per month.
    pub scores: Option<i64>,
    /// `soft` (warn) or `hard` (refuse with 429).
    pub enforcement: Option<String>,
    /// Percentages of each limit that raise a cost alert, once per month.
    pub alert_thresholds: Option<Vec<i64>>,
    /// Where cost alerts go (a webhook URL).
    pub alert_webhook_url: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(redact_url))
            .field("public_url", &self.public_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("poll_interval", &self.poll_interval)
            .field("min_revision_wait", &self.min_revision_wait)
            .field("log", &self.log)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("session_ttl", &self.session_ttl)
            .field("cors_origins", &self.cors_origins)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("secret_key_file", &self.secret_key_file)
            .field("secret_keys_previous", &self.secret_keys_previous.iter().map(|_| "***").collect::<Vec<_>>())
            .field("outbound_allow", &self.outbound_allow)
            .field("slack_api_url", &self.slack_api_url)
            .field("pagerduty_api_url", &self.pagerduty_api_url)
            .field("webhook_attempts", &self.webhook_attempts)
            .field("webhook_backoff", &self.webhook_backoff)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("scheduler_tick", &self.scheduler_tick)
            .field("usage_metering", &self.usage_metering)
            .field("plan_limits", &self.plan_limits)
            .finish()
    }
}

/// Hides the password of a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("castellan-data"),
            database_url: None,
            public_url: None,
            max_body_bytes: 64 * 1024 * 1024,
            poll_interval: Duration::from_millis(500),
            min_revision_wait: Duration::from_secs(5),
            log: "info".into(),
            trust_forwarded_for: false,
            session_ttl: Duration::from_secs(12 * 3600),
            cors_origins: Vec::new(),
            secret_key: None,
            secret_key_file: None,
            secret_keys_previous: Vec::new(),
            outbound_allow: Vec::new(),
            slack_api_url: "https://slack.com/api".into(),
            pagerduty_api_url: "https://events.pagerduty.com".into(),
            webhook_attempts: 4,
            webhook_backoff: Duration::from_secs(2),
            webhook_timeout: Duration::from_secs(10),
            scheduler_tick: Duration::from_secs(30),
            usage_metering: true,
            plan_limits: PlanLimitsConfig::default(),
        }
    }
}

/// Every setting, declared once: a key of the TOML file (unknown keys are refused),
/// a `CASTELLAN_<KEY>` environment variable and a `--<key>` flag (the CLI flattens
/// this into `serve`, `migrate` and `bootstrap`). All optional; precedence is
/// defaults, then the file, then the environment, then flags.
#[derive(Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on [default: 127.0.0.1:8000].
    #[arg(long, env = "CASTELLAN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded SQLite database and generated secrets
    /// [default: ./castellan-data].
    #[arg(long, env = "CASTELLAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (`postgres://…`); when set, used instead of SQLite.
    #[arg(long, env = "CASTELLAN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The URL clients should use to reach this server [default: http://LISTEN].
    #[arg(long, env = "CASTELLAN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes [default: 64 MiB].
    #[arg(long, env = "CASTELLAN_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// How often to poll for other replicas' writes, in milliseconds (a fallback on
    /// PostgreSQL, which also announces commits) [default: 500].
    #[arg(long, env = "CASTELLAN_POLL_INTERVAL_MS")]
    pub poll_interval_ms: Option<u64>,
    /// How long a request may wait for `x-castellan-min-revision`, in milliseconds
    /// [default: 5000].
    #[arg(long, env = "CASTELLAN_MIN_REVISION_WAIT_MS")]
    pub min_revision_wait_ms: Option<u64>,
    /// Log filter, e.g. `info` or `castellan_server=debug` [default: info].
    #[arg(long, env = "CASTELLAN_LOG")]
    pub log: Option<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy)
    /// [default: false].
    #[arg(long, env = "CASTELLAN_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: Option<bool>,
    /// How long a console session lasts at most, in hours [default: 12].
    #[arg(long, env = "CASTELLAN_SESSION_TTL_HOURS")]
    pub session_ttl_hours: Option<u64>,
    /// Browser origins allowed to make credentialed (cookie) cross-origin requests;
    /// repeat the flag or separate with commas [default: none].
    #[arg(long = "cors-origin", env = "CASTELLAN_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// The master key that seals secret values: 64 hex characters (`openssl rand
    /// -hex 32`). Every replica of a PostgreSQL deployment needs the same one
    /// [default: for the embedded database, `secret.key` generated in the data
    /// directory].
    #[arg(long, env = "CASTELLAN_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// A file holding the master key (64 hex characters), instead of `secret_key`.
    #[arg(long, env = "CASTELLAN_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Earlier master keys, comma-separated: they open values sealed before a
    /// rotation (`castellan secrets rotate-key`) and never seal.
    #[arg(long, env = "CASTELLAN_SECRET_KEYS_PREVIOUS", value_delimiter = ',', hide_env_values = true)]
    pub secret_keys_previous: Option<Vec<String>>,
    /// Private or loopback destinations outbound requests (webhooks, Slack, AI
    /// providers) may reach anyway: IPs, CIDR blocks or host names, comma-separated
    /// [default: none].
    #[arg(long, env = "CASTELLAN_OUTBOUND_ALLOW", value_delimiter = ',')]
    pub outbound_allow: Option<Vec<String>>,
    /// Slack's Web API base URL [default: https://slack.com/api].
    #[arg(long, env = "CASTELLAN_SLACK_API_URL")]
    pub slack_api_url: Option<String>,
    /// PagerDuty's Events API base URL [default: https://events.pagerduty.com].
    #[arg(long, env = "CASTELLAN_PAGERDUTY_API_URL")]
    pub pagerduty_api_url: Option<String>,
    /// Attempts per notification before it is recorded as failed [default: 4].
    #[arg(long, env = "CASTELLAN_WEBHOOK_ATTEMPTS")]
    pub webhook_attempts: Option<u32>,
    /// Wait before the second attempt, in milliseconds; doubles after [default: 2000].
    #[arg(long, env = "CASTELLAN_WEBHOOK_BACKOFF_MS")]
    pub webhook_backoff_ms: Option<u64>,
    /// Time limit of one outbound request, in milliseconds [default: 10000].
    #[arg(long, env = "CASTELLAN_WEBHOOK_TIMEOUT_MS")]
    pub webhook_timeout_ms: Option<u64>,
    /// How often the scheduler looks for due automations, in milliseconds
    /// [default: 30000].
    #[arg(long, env = "CASTELLAN_SCHEDULER_TICK_MS")]
    pub scheduler_tick_ms: Option<u64>,
    /// Count usage per organization and day in every write (turn off only to
    /// measure its cost) [default: true].
    #[arg(long, env = "CASTELLAN_USAGE_METERING")]
    pub usage_metering: Option<bool>,
    /// The default plan of every organization (file only: a `[plan_limits]` table).
    #[arg(skip)]
    pub plan_limits: Option<PlanLimitsConfig>,
}

impl fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(redact_url))
            .field("public_url", &self.public_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("min_revision_wait_ms", &self.min_revision_wait_ms)
            .field("log", &self.log)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("session_ttl_hours", &self.session_ttl_hours)
            .field("cors_origins", &self.cors_origins)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("secret_key_file", &self.secret_key_file)
            .field("secret_keys_previous", &self.secret_keys_previous.iter().map(|_| "***").collect::<Vec<_>>())
            .field("outbound_allow", &self.outbound_allow)
            .field("slack_api_url", &self.slack_api_url)
            .field("pagerduty_api_url", &self.pagerduty_api_url)
            .field("webhook_attempts", &self.webhook_attempts)
            .field("webhook_backoff_ms", &self.webhook_backoff_ms)
            .field("webhook_timeout_ms", &self.webhook_timeout_ms)
            .field("scheduler_tick_ms", &self.scheduler_tick_ms)
            .field("usage_metering", &self.usage_metering)
            .field("plan_limits", &self.plan_limits)
            .finish()
    }
}

/// Values from the environment or flags; they win over the file.
pub type Overrides = FileConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid (syntax, types or unknown keys).
    #[error("invalid config file `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl Config {
    /// Builds the configuration from an optional file and overrides.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let from_file = match file {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?
            }
        };
        let d = Config::default();
        let cfg = Config {
            listen: overrides.listen.or(from_file.listen).unwrap_or(d.listen),
            data_dir: overrides.data_dir.or(from_file.data_dir).unwrap_or(d.data_dir),
            database_url: overrides.database_url.or(from_file.database_url).filter(|s| !s.is_empty()),
            public_url: overrides.public_url.or(from_file.public_url).filter(|s| !s.is_empty()),
            max_body_bytes: overrides.max_body_bytes.or(from_file.max_body_bytes).unwrap_or(d.max_body_bytes),
            poll_interval: overrides
                .poll_interval_ms
                .or(from_file.poll_interval_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.poll_interval),
            min_revision_wait: overrides
                .min_revision_wait_ms
                .or(from_file.min_revision_wait_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.min_revision_wait),
            log: overrides.log.or(from_file.log).unwrap_or(d.log),
            trust_forwarded_for: overrides
                .trust_forwarded_for
                .or(from_file.trust_forwarded_for)
                .unwrap_or(d.trust_forwarded_for),
            session_ttl: overrides
                .session_ttl_hours
                .or(from_file.session_ttl_hours)
                .map(|h| Duration::from_secs(h * 3600))
                .unwrap_or(d.session_ttl),
            cors_origins: overrides.cors_origins.or(from_file.cors_origins).unwrap_or_default(),
            secret_key: overrides.secret_key.or(from_file.secret_key).filter(|s| !s.is_empty()),
            secret_key_file: overrides.secret_key_file.or(from_file.secret_key_file),
            secret_keys_previous: overrides.secret_keys_previous.or(from_file.secret_keys_previous).unwrap_or_default(),
            outbound_allow: overrides.outbound_allow.or(from_file.outbound_allow).unwrap_or_default(),
            slack_api_url: overrides.slack_api_url.or(from_file.slack_api_url).unwrap_or(d.slack_api_url),
            pagerduty_api_url: overrides
                .pagerduty_api_url
                .or(from_file.pagerduty_api_url)
                .unwrap_or(d.pagerduty_api_url),
            webhook_attempts: overrides.webhook_attempts.or(from_file.webhook_attempts).unwrap_or(d.webhook_attempts),
            webhook_backoff: overrides
                .webhook_backoff_ms
                .or(from_file.webhook_backoff_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.webhook_backoff),
            webhook_timeout: overrides
                .webhook_timeout_ms
                .or(from_file.webhook_timeout_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.webhook_timeout),
            scheduler_tick: overrides
                .scheduler_tick_ms
                .or(from_file.scheduler_tick_ms)
                .map(Duration::from_millis)
                .unwrap_or(d.scheduler_tick),
            usage_metering: overrides.usage_metering.or(from_file.usage_metering).unwrap_or(d.usage_metering),
            plan_limits: overrides.plan_limits.or(from_file.plan_limits).unwrap_or_default(),
        };
        for a in &cfg.outbound_allow {
            crate::outbound::Allow::parse(a).map_err(ConfigError::Invalid)?;
        }
        for (key, url) in [("slack_api_url", &cfg.slack_api_url), ("pagerduty_api_url", &cfg.pagerduty_api_url)] {
            if !(url.starts_with("https://") || url.starts_with("http://")) || reqwest::Url::parse(url).is_err() {
                return Err(ConfigError::Invalid(format!("{key}: `{url}` is not an http(s) URL")));
            }
        }
        if !(1..=20).contains(&cfg.webhook_attempts) {
            return Err(ConfigError::Invalid(format!(
                "webhook_attempts must be from 1 to 20, got {}",
                cfg.webhook_attempts
            )));
        }
        if cfg.webhook_timeout.is_zero() || cfg.scheduler_tick.is_zero() {
            return Err(ConfigError::Invalid("webhook_timeout_ms and scheduler_tick_ms must be positive".into()));
        }
        crate::usage::Plan::from_config(&cfg.plan_limits)
            .map_err(|e| ConfigError::Invalid(format!("plan_limits: {e}")))?;
        if cfg.secret_key.is_some() && cfg.secret_key_file.is_some() {
            return Err(ConfigError::Invalid("set one of secret_key and secret_key_file, not both".into()));
        }
        for o in &cfg.cors_origins {
            let ok = (o.starts_with("https://") || o.starts_with("http://"))
                && !o.ends_with('/')
                && o.split("://").nth(1).is_some_and(|h| !h.is_empty() && !h.contains('/'))
                && axum::http::HeaderValue::from_str(o).is_ok();
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "cors_origins: `{o}` is not an origin (scheme://host[:port], no path, no trailing slash)"
                )));
            }
        }
        if cfg.session_ttl.is_zero() {
            return Err(ConfigError::Invalid("session_ttl_hours must be positive".into()));
        }
        if cfg.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(format!(
                "max_body_bytes must be at least 1024, got {}",
                cfg.max_body_bytes
            )));
        }
        if cfg.poll_interval.is_zero() {
            return Err(ConfigError::Invalid("poll_interval_ms must be positive".into()));
        }
        if let Some(url) = &cfg.database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::Invalid(format!(
                    "database_url must start with postgres:// (got `{}`); leave it unset for the embedded SQLite file",
                    redact_url(url)
                )));
            }
        }
        Ok(cfg)
    }

    /// The URL clients should use for this server.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "listen = \"0.0.0.0:9000\"\nlog = \"debug\"").unwrap();
        let over = Overrides { log: Some("warn".into()), ..Default::default() };
        let c = Config::load(Some(f.path()), over).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.log, "warn");
        assert_eq!(c.data_dir, PathBuf::from("castellan-data"));
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "lisen = \"0.0.0.0:9000\"").unwrap();
        let err = Config::load(Some(f.path()), Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn database_passwords_never_show_in_debug_output() {
        let over = Overrides { database_url: Some("postgres://app:s3cret@db/castellan".into()), ..Default::default() };
        let c = Config::load(None, over).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://app:***@db/castellan"), "{shown}");
    }

    #[test]
    fn every_file_key_also_has_a_flag_and_an_environment_variable() {
        use clap::Args;
        let cmd = FileConfig::augment_args(clap::Command::new("t"));
        let mut seen = Vec::new();
        for a in cmd.get_arguments() {
            let key = a.get_id().as_str().to_owned();
            let env = a.get_env().and_then(|e| e.to_str()).unwrap_or_default().to_owned();
            assert_eq!(env, format!("CASTELLAN_{}", key.to_uppercase()), "{key}");
            assert!(a.get_long().is_some(), "{key} has no flag");
            seen.push(key);
        }
        // Each of them is a key the file accepts (unknown keys are refused).
        for key in &seen {
            let value = match key.as_str() {
                "listen" => "\"127.0.0.1:1\"",
                "data_dir" | "database_url" | "public_url" | "log" | "secret_key" | "secret_key_file" => {
                    "\"postgres://x\""
                }
                "trust_forwarded_for" | "usage_metering" => "true",
                "cors_origins" | "secret_keys_previous" | "outbound_allow" => "[\"https://a.example\"]",
                "slack_api_url" | "pagerduty_api_url" => "\"https://x.example\"",
                _ => "2048",
            };
            let file: Result<FileConfig, _> = toml::from_str(&format!("{key} = {value}"));
            assert!(file.is_ok(), "{key}: {file:?}");
        }
        assert_eq!(seen.len(), 22, "{seen:?}");
    }

    #[test]
    fn flags_set_every_key() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            c: FileConfig,
        }
        let t = T::try_parse_from([
            "t",
            "--max-body-bytes",
            "4096",
            "--min-revision-wait-ms",
            "10",
            "--trust-forwarded-for",
            "true",
            "--session-ttl-hours",
            "2",
            "--cors-origin",
            "https://a.example,https://b.example",
        ])
        .unwrap();
        let c = Config::load(None, t.c).unwrap();
        assert_eq!(c.max_body_bytes, 4096);
        assert_eq!(c.min_revision_wait, Duration::from_millis(10));
        assert!(c.trust_forwarded_for);
        assert_eq!(c.session_ttl, Duration::from_secs(7200));
        assert_eq!(c.cors_origins, ["https://a.example", "https://b.example"]);
    }

    #[test]
    fn cors_origins_must_be_bare_origins() {
        let over = Overrides { cors_origins: Some(vec!["https://console.acme.example".into()]), ..Default::default() };
        assert_eq!(Config::load(None, over).unwrap().cors_origins, ["https://console.acme.example"]);
        for bad in ["*", "https://acme.example/", "acme.example", "https://acme.example/path"] {
            let over = Overrides { cors_origins: Some(vec![bad.into()]), ..Default::default() };
            let err = Config::load(None, over).unwrap_err().to_string();
            assert!(err.contains("cors_origins"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_master_key_never_shows_in_debug_output() {
        let key = "ab".repeat(32);
        let over = Overrides { secret_key: Some(key.clone()), ..Default::default() };
        assert!(!format!("{over:?}").contains(&key));
        let c = Config::load(None, over).unwrap();
        assert!(!format!("{c:?}").contains(&key), "{c:?}");
        let both = Overrides { secret_key: Some(key), secret_key_file: Some("k".into()), ..Default::default() };
        assert!(Config::load(None, both).is_err());
    }

    #[test]
    fn the_default_plan_comes_from_a_plan_limits_table_and_is_checked() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[plan_limits]\nspans = 1000\nenforcement = \"hard\"\nalert_thresholds = [80, 100]").unwrap();
        let c = Config::load(Some(f.path()), Overrides::default()).unwrap();
        assert_eq!(c.plan_limits.spans, Some(1000));
        assert_eq!(c.plan_limits.enforcement.as_deref(), Some("hard"));
        assert!(c.usage_metering);
        let mut bad = tempfile::NamedTempFile::new().unwrap();
        writeln!(bad, "[plan_limits]\nenforcement = \"strict\"").unwrap();
        let err = Config::load(Some(bad.path()), Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("plan_limits") && err.contains("enforcement"), "{err}");
        let mut unknown = tempfile::NamedTempFile::new().unwrap();
        writeln!(unknown, "[plan_limits]\nspan = 3").unwrap();
        assert!(Config::load(Some(unknown.path()), Overrides::default()).is_err());
    }

    #[test]
    fn a_non_postgres_database_url_is_refused() {
        let over = Overrides { database_url: Some("mysql://x".into()), ..Default::default() };
        assert!(Config::load(None, over).is_err());
    }
}

//! The command line.

use crate::access_cmds;
use crate::client::Client;
use crate::config_cmds;
use crate::output::{cell, emit, Table};
use anyhow::{Context, Result};
use castellan_api_types as api;
use castellan_server::config::{Config, Overrides};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Castellan: access control and administration for AI evaluation platforms.
#[derive(Debug, Parser)]
#[command(name = "castellan", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (HTTP API).
    Serve(ServerArgs),
    /// Apply database migrations and exit.
    Migrate(ServerArgs),
    /// Database maintenance (on the database directly, like `migrate`).
    Maintenance(MaintenanceArgs),
    /// Create the first organization, its first owner and that owner's first API key.
    Bootstrap(BootstrapArgs),
    /// Show who the API key acts as.
    Whoami(ClientArgs),
    /// Organizations.
    Org(OrgCmd),
    /// Projects.
    Project(ProjectCmd),
    /// API keys.
    ApiKey(ApiKeyCmd),
    /// Grants (ACLs).
    Acl(Sub<access_cmds::AclAction>),
    /// Permission groups.
    Group(Sub<access_cmds::GroupAction>),
    /// Roles.
    Role(Sub<access_cmds::RoleAction>),
    /// Organization members and invitations.
    Member(Sub<access_cmds::MemberAction>),
    /// Explain access, who can, what can.
    Access(Sub<access_cmds::AccessAction>),
    /// The audit log: list, verify the hash chain, export.
    Audit(Sub<access_cmds::AuditAction>),
    /// Service accounts (owners only).
    ServiceAccount(Sub<access_cmds::ServiceAccountAction>),
    /// Service tokens (owners only).
    ServiceToken(Sub<access_cmds::ServiceTokenAction>),
    /// SCIM provisioning tokens for an identity provider (owners only).
    ScimToken(Sub<access_cmds::ScimTokenAction>),
    /// Configuration as code: export an organization's administration state to a
    /// file, plan a file against it, apply a file.
    Config(Sub<config_cmds::ConfigAction>),
    /// The master key that seals secret values: status and rotation (on the
    /// database directly, like `migrate`).
    Secrets(SecretsArgs),
    /// The organization's metered usage (processed bytes, spans, scores) per UTC
    /// day or month, and the current month against its plan.
    Usage(UsageCmd),
    /// The organization's plan: monthly limits, enforcement, cost-alert thresholds.
    Plan(Sub<crate::usage_cmds::PlanAction>),
    /// Automations and online scoring rules: list them, their run history and
    /// their notifications' delivery log.
    Automation(Sub<crate::automation_cmds::AutomationAction>),
    /// Sign in to an organization by single sign-on in your browser; its API key is
    /// kept in the credentials file (`CASTELLAN_CREDENTIALS`, else
    /// ~/.config/castellan/credentials.json) and used when no --api-key is given.
    Login(LoginCmd),
    /// Revoke the API key `castellan login` saved, and forget it.
    Logout(ClientArgs),
    /// Single sign-on (OpenID Connect) configurations (owners only).
    Sso(Sub<crate::sso_cmds::SsoAction>),
}

/// `castellan login`.
#[derive(Debug, Args)]
struct LoginCmd {
    /// The organization to sign in to by single sign-on.
    #[arg(long, value_name = "ORG")]
    sso: String,
    /// Which of its SSO configurations (by name); default: its first.
    #[arg(long)]
    sso_config: Option<String>,
    /// Do not open a browser; only print the URL to open.
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for the browser, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    #[command(flatten)]
    client: ClientArgs,
}

/// `castellan usage`: the range and how to reach the server.
#[derive(Debug, Args)]
struct UsageCmd {
    #[command(flatten)]
    args: crate::usage_cmds::UsageArgs,
    #[command(flatten)]
    client: ClientArgs,
}

/// `castellan maintenance`.
#[derive(Debug, Args)]
struct MaintenanceArgs {
    #[command(subcommand)]
    action: MaintenanceAction,
}

#[derive(Debug, Subcommand)]
enum MaintenanceAction {
    /// Rewrite the storage of logs, object versions and blobs so that the bytes of
    /// rows retention (or a delete) removed leave the database files. SQLite: `VACUUM`
    /// (writes wait meanwhile). PostgreSQL: `VACUUM FULL` of those tables, which locks
    /// each one while it is rewritten: run it in a maintenance window.
    Compact {
        #[command(flatten)]
        server: ServerArgs,
        /// Print the result as JSON (progress is not shown).
        #[arg(long)]
        json: bool,
    },
}

/// `castellan secrets`: the action (each with where the database and keys are).
#[derive(Debug, Args)]
struct SecretsArgs {
    #[command(subcommand)]
    action: crate::secrets_cmds::SecretsAction,
}

/// A command group: its action and how to reach the server.
#[derive(Debug, Args)]
struct Sub<A: Subcommand> {
    #[command(subcommand)]
    action: A,
    #[command(flatten)]
    client: ClientArgs,
}

/// Where the database is and how to serve it.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Config file (TOML, the same keys as the flags).
    #[arg(long, env = "CASTELLAN_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Overrides,
}

impl ServerArgs {
    pub(crate) fn config(&self) -> Result<Config> {
        Ok(Config::load(self.config.as_deref(), self.settings.clone())?)
    }
}

#[derive(Debug, Args)]
struct BootstrapArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Name of the organization to create.
    #[arg(long)]
    org: String,
    /// Email of its first owner (an existing user with this email is reused).
    #[arg(long)]
    email: String,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// How to reach a server.
#[derive(Debug, Args, Clone)]
struct ClientArgs {
    /// Server URL [default: the one `castellan login` saved, else http://127.0.0.1:8000].
    #[arg(long, global = true, env = "CASTELLAN_URL")]
    url: Option<String>,
    /// API key (`sk-…`) or service token.
    #[arg(long, global = true, env = "CASTELLAN_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Organization name, when the key belongs to several.
    #[arg(long, global = true, env = "CASTELLAN_ORG")]
    org: Option<String>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
}

impl ClientArgs {
    /// The server URL: given, else the saved sign-in's, else the local default.
    fn url(&self) -> Result<String> {
        if let Some(u) = &self.url {
            return Ok(u.clone());
        }
        Ok(crate::sso_cmds::load_credentials()?.map(|c| c.url).unwrap_or_else(|| "http://127.0.0.1:8000".into()))
    }

    /// A client: the key given, else the one `castellan login` saved for this server
    /// (and its organization, unless one is given).
    fn client(&self) -> Result<Client> {
        let url = self.url()?;
        if self.api_key.is_some() {
            return Client::new(&url, self.api_key.clone(), self.org.clone());
        }
        match crate::sso_cmds::load_credentials()? {
            Some(c) if c.url == url.trim_end_matches('/') => {
                Client::new(&url, Some(c.api_key), self.org.clone().or(Some(c.org_name)))
            }
            _ => Client::new(&url, None, self.org.clone()),
        }
    }
}

#[derive(Debug, Args)]
struct OrgCmd {
    #[command(subcommand)]
    action: OrgAction,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum OrgAction {
    /// List your organizations.
    List,
    /// Show one organization.
    Get { id: uuid::Uuid },
    /// Create an organization (you become its owner).
    Create { name: String },
    /// Rename an organization or change its URLs.
    Update {
        id: uuid::Uuid,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        api_url: Option<String>,
    },
    /// Delete an organization and everything in it.
    Delete { id: uuid::Uuid },
}

#[derive(Debug, Args)]
struct ProjectCmd {
    #[command(subcommand)]
    action: ProjectAction,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum ProjectAction {
    /// List projects you can read.
    List {
        /// Only the project with this name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Show one project.
    Get { id: uuid::Uuid },
    /// Create a project (or get the existing one of that name).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Rename a project or change its description.
    Update {
        id: uuid::Uuid,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a project.
    Delete { id: uuid::Uuid },
}

#[derive(Debug, Args)]
struct ApiKeyCmd {
    #[command(subcommand)]
    action: ApiKeyAction,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Subcommand)]
enum ApiKeyAction {
    /// List your API keys (owners: every key of the org).
    List,
    /// Show one API key.
    Get { id: uuid::Uuid },
    /// Create an API key; the secret is printed once.
    Create {
        name: String,
        /// RFC 3339 time after which the key stops working.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Revoke an API key.
    Delete { id: uuid::Uuid },
}

fn init_logging(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).try_init();
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(a) => serve(a).await,
        Command::Migrate(a) => {
            let config = a.config()?;
            init_logging(&config.log);
            let store = castellan_server::serve::open_store(&config).await?;
            store.migrate().await?;
            println!("migrations applied ({})", store.backend());
            store.close().await;
            Ok(())
        }
        Command::Maintenance(MaintenanceArgs { action: MaintenanceAction::Compact { server, json } }) => {
            let config = server.config()?;
            init_logging(&config.log);
            let store = castellan_server::serve::open_store(&config).await?;
            if !json {
                eprintln!("compacting the {} database (this rewrites the log tables)…", store.backend());
            }
            let started = std::time::Instant::now();
            let done = store.compact().await;
            store.close().await;
            let done = done?;
            emit(json, &done, |d| {
                let mut t = Table::new(vec!["WHAT", "BEFORE", "AFTER"]);
                for c in d {
                    t.row(vec![c.what.clone(), human_bytes(c.bytes_before), human_bytes(c.bytes_after)]);
                }
                format!("{}compacted in {:.1} s\n", t.render(), started.elapsed().as_secs_f64())
            });
            Ok(())
        }
        Command::Bootstrap(a) => bootstrap(a).await,
        Command::Whoami(c) => {
            let me: api::SelfInfo = c.client()?.post("/api/self/me", &serde_json::json!({})).await?;
            emit(c.json, &me, |m| {
                let orgs: Vec<String> = m.organizations.iter().map(|o| format!("{} ({})", o.name, o.id)).collect();
                format!(
                    "user:          {} ({})\norganizations: {}\n",
                    m.email.as_deref().unwrap_or("-"),
                    m.id,
                    if orgs.is_empty() { "-".into() } else { orgs.join(", ") }
                )
            });
            Ok(())
        }
        Command::Org(cmd) => org(cmd).await,
        Command::Project(cmd) => project(cmd).await,
        Command::ApiKey(cmd) => api_key(cmd).await,
        Command::Acl(s) => access_cmds::acl(&s.client.client()?, s.client.json, s.action).await,
        Command::Group(s) => {
            access_cmds::group(&s.client.client()?, s.client.json, s.client.org.clone(), s.action).await
        }
        Command::Role(s) => access_cmds::role(&s.client.client()?, s.client.json, s.client.org.clone(), s.action).await,
        Command::Member(s) => {
            access_cmds::member(&s.client.client()?, s.client.json, s.client.org.clone(), s.action).await
        }
        Command::Access(s) => access_cmds::access(&s.client.client()?, s.client.json, s.action).await,
        Command::Audit(s) => access_cmds::audit(&s.client.client()?, s.client.json, s.action).await,
        Command::ServiceAccount(s) => {
            access_cmds::service_account(&s.client.client()?, s.client.json, s.client.org.clone(), s.action).await
        }
        Command::ServiceToken(s) => {
            access_cmds::service_token(&s.client.client()?, s.client.json, s.client.org.clone(), s.action).await
        }
        Command::ScimToken(s) => {
            access_cmds::scim_token(&s.client.client()?, s.client.json, s.client.org.clone(), s.action).await
        }
        Command::Config(s) => config_cmds::config(&s.client.client()?, s.client.json, s.action).await,
        Command::Usage(u) => crate::usage_cmds::usage(&u.client.client()?, u.client.json, u.args).await,
        Command::Login(l) => {
            let url = l.client.url()?;
            let (org, cfg) = (l.sso.as_str(), l.sso_config.as_deref());
            crate::sso_cmds::login(&url, org, cfg, l.no_browser, l.timeout_secs, l.client.json).await
        }
        Command::Logout(c) => crate::sso_cmds::logout(c.json).await,
        Command::Sso(s) => {
            crate::sso_cmds::sso(&s.client.client()?, s.client.json, s.client.org.clone(), s.action).await
        }
        Command::Plan(s) => {
            crate::usage_cmds::plan(&s.client.client()?, s.client.json, s.client.org.as_deref(), s.action).await
        }
        Command::Automation(s) => {
            crate::automation_cmds::automation(&s.client.client()?, s.client.json, s.action).await
        }
        Command::Secrets(a) => {
            let (server, json) = a.action.server();
            let config = server.config()?;
            init_logging(&config.log);
            crate::secrets_cmds::secrets(config, json, a.action).await
        }
    }
}

async fn serve(a: ServerArgs) -> Result<()> {
    let config = a.config()?;
    init_logging(&config.log);
    tracing::info!(config = ?config, "starting");
    let running = castellan_server::serve::start(config.clone()).await?;
    let orgs = running.state.org_count().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "castellan {} listening on http://{} ({})",
        env!("CARGO_PKG_VERSION"),
        running.addr,
        running.state.backend()
    );
    if orgs == 0 {
        let db = match &config.database_url {
            Some(_) => "--database-url … ".to_owned(),
            None => format!("--data-dir {} ", config.data_dir.display()),
        };
        println!(
            "no organization exists yet; create the first one and its owner's API key with:\n  castellan bootstrap {db}--org <NAME> --email <EMAIL>"
        );
    }
    running.wait().await?;
    Ok(())
}

async fn bootstrap(a: BootstrapArgs) -> Result<()> {
    let config = a.server.config()?;
    init_logging(&config.log);
    let store = castellan_server::serve::open_store(&config).await?;
    let (state, system) =
        castellan_server::serve::prepare(store, config, castellan_server::access::system_clock()).await?;
    let out = castellan_server::seed::bootstrap(&state, &system, &a.org, &a.email)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    state.close().await;
    emit(a.json, &out, |o| {
        format!(
            "created organization `{}` ({})\nowner: {} ({})\n\nAPI key (shown once, store it now):\n{}\n",
            o.org_name, o.org_id, o.email, o.user_id, o.api_key
        )
    });
    Ok(())
}

fn orgs_table(v: &[api::Organization]) -> String {
    let mut t = Table::new(vec!["ID", "NAME", "CREATED"]);
    for o in v {
        t.row(vec![o.id.to_string(), o.name.clone(), cell(&o.created)]);
    }
    t.render()
}

async fn org(cmd: OrgCmd) -> Result<()> {
    let c = cmd.client.client()?;
    let json = cmd.client.json;
    match cmd.action {
        OrgAction::List => {
            let l: api::ListResponse<api::Organization> = c.get("/v1/organization", &[]).await?;
            emit(json, &l, |l| orgs_table(&l.objects));
        }
        OrgAction::Get { id } => {
            let o: api::Organization = c.get(&format!("/v1/organization/{id}"), &[]).await?;
            emit(json, &o, |o| orgs_table(std::slice::from_ref(o)));
        }
        OrgAction::Create { name } => {
            let o: api::CreatedOrganization = c.post("/v1/organization", &api::CreateOrganization { name }).await?;
            emit(json, &o, |o| {
                let mut s = orgs_table(std::slice::from_ref(&o.organization));
                if let Some(k) = &o.api_key {
                    s.push_str(&format!("API key for this organization (shown once, store it now):\n{k}\n"));
                }
                s
            });
        }
        OrgAction::Update { id, name, api_url } => {
            let body = api::PatchOrganization { name, api_url, ..Default::default() };
            let o: api::Organization = c.patch(&format!("/v1/organization/{id}"), &body).await?;
            emit(json, &o, |o| orgs_table(std::slice::from_ref(o)));
        }
        OrgAction::Delete { id } => {
            let o: api::Organization = c.delete(&format!("/v1/organization/{id}")).await?;
            emit(json, &o, |o| format!("deleted organization `{}` ({})\n", o.name, o.id));
        }
    }
    Ok(())
}

fn projects_table(v: &[api::Project]) -> String {
    let mut t = Table::new(vec!["ID", "NAME", "ORG", "DESCRIPTION"]);
    for p in v {
        t.row(vec![p.id.to_string(), p.name.clone(), p.org_id.to_string(), cell(&p.description)]);
    }
    t.render()
}

async fn project(cmd: ProjectCmd) -> Result<()> {
    let c = cmd.client.client()?;
    let json = cmd.client.json;
    match cmd.action {
        ProjectAction::List { name } => {
            let q: Vec<(&str, String)> = name.map(|n| vec![("project_name", n)]).unwrap_or_default();
            let l: api::ListResponse<api::Project> = c.get("/v1/project", &q).await?;
            emit(json, &l, |l| projects_table(&l.objects));
        }
        ProjectAction::Get { id } => {
            let p: api::Project = c.get(&format!("/v1/project/{id}"), &[]).await?;
            emit(json, &p, |p| projects_table(std::slice::from_ref(p)));
        }
        ProjectAction::Create { name, description } => {
            let body =
                api::CreateProject { name, description, org_name: cmd.client.org.clone(), project_group_name: None };
            let p: api::Project = c.post("/v1/project", &body).await?;
            emit(json, &p, |p| projects_table(std::slice::from_ref(p)));
        }
        ProjectAction::Update { id, name, description } => {
            let body = api::PatchProject { name, description, ..Default::default() };
            let p: api::Project = c.patch(&format!("/v1/project/{id}"), &body).await?;
            emit(json, &p, |p| projects_table(std::slice::from_ref(p)));
        }
        ProjectAction::Delete { id } => {
            let p: api::Project = c.delete(&format!("/v1/project/{id}")).await?;
            emit(json, &p, |p| format!("deleted project `{}` ({})\n", p.name, p.id));
        }
    }
    Ok(())
}

fn keys_table(v: &[api::ApiKey]) -> String {
    let mut t = Table::new(vec!["ID", "NAME", "PREVIEW", "USER", "EXPIRES", "LAST USED"]);
    for k in v {
        t.row(vec![
            k.id.to_string(),
            k.name.clone(),
            k.preview_name.clone(),
            cell(&k.user_email),
            cell(&k.expires_at),
            cell(&k.last_used),
        ]);
    }
    t.render()
}

async fn api_key(cmd: ApiKeyCmd) -> Result<()> {
    let c = cmd.client.client()?;
    let json = cmd.client.json;
    match cmd.action {
        ApiKeyAction::List => {
            let l: api::ListResponse<api::ApiKey> = c.get("/v1/api_key", &[]).await?;
            emit(json, &l, |l| keys_table(&l.objects));
        }
        ApiKeyAction::Get { id } => {
            let k: api::ApiKey = c.get(&format!("/v1/api_key/{id}"), &[]).await?;
            emit(json, &k, |k| keys_table(std::slice::from_ref(k)));
        }
        ApiKeyAction::Create { name, expires_at } => {
            let body = api::CreateApiKey { name, org_name: cmd.client.org.clone(), org_id: None, expires_at };
            let k: api::CreateApiKeyOutput = c.post("/v1/api_key", &body).await.context("creating the API key")?;
            emit(json, &k, |k| {
                format!(
                    "{}\nAPI key (shown once, store it now):\n{}\n",
                    keys_table(std::slice::from_ref(&k.api_key)),
                    k.key
                )
            });
        }
        ApiKeyAction::Delete { id } => {
            let k: api::ApiKey = c.delete(&format!("/v1/api_key/{id}")).await?;
            emit(json, &k, |k| format!("revoked API key `{}` ({})\n", k.name, k.id));
        }
    }
    Ok(())
}

/// Bytes as people read them (`1.5 MiB`).
fn human_bytes(n: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

//! `castellan secrets`: the master key that seals secret values — which keys the
//! database's values are sealed with, and rotation to a new key while servers run.

use crate::commands::ServerArgs;
use crate::output::emit;
use anyhow::{bail, Context, Result};
use castellan_server::config::Config;
use castellan_server::secrets::Sealer;
use clap::Subcommand;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

/// What to do with the master key.
#[derive(Debug, Subcommand)]
pub enum SecretsAction {
    /// How many sealed values each master key sealed, and which keys this
    /// configuration has.
    Status {
        #[command(flatten)]
        server: ServerArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Seal every value again under the current master key (`secret_key`,
    /// `secret_key_file` or the data directory's `secret.key`), opening them with
    /// the earlier keys (`secret_keys_previous`, or the `.previous-<id>` files
    /// beside the key file). Servers keep running: give them the new key (and the
    /// old one as previous) first.
    RotateKey {
        /// First make a new key: the key file moves aside to `<file>.previous-<id>`
        /// and a new one (mode 0600) takes its place. Only for keys kept in a file.
        #[arg(long)]
        generate: bool,
        /// Afterwards, delete the `.previous-<id>` key files, once no value needs
        /// them.
        #[arg(long)]
        forget_previous: bool,
        #[command(flatten)]
        server: ServerArgs,
        /// Print the result as JSON (progress is not shown).
        #[arg(long)]
        json: bool,
    },
}

impl SecretsAction {
    /// Where the database and keys are, and whether to print JSON.
    pub fn server(&self) -> (&ServerArgs, bool) {
        match self {
            SecretsAction::Status { server, json } | SecretsAction::RotateKey { server, json, .. } => (server, *json),
        }
    }
}

#[derive(Serialize)]
struct Status {
    key_id: String,
    previous_key_ids: Vec<String>,
    sealed_values: BTreeMap<String, i64>,
}

/// The key file of this configuration, if its key lives in one.
fn key_file(config: &Config) -> Option<std::path::PathBuf> {
    if config.secret_key.is_some() {
        return None;
    }
    match (&config.secret_key_file, &config.database_url) {
        (Some(f), _) => Some(f.clone()),
        (None, None) => Some(Sealer::default_file(config)),
        (None, Some(_)) => None,
    }
}

/// Runs a `castellan secrets` command.
pub async fn secrets(config: Config, json: bool, action: SecretsAction) -> Result<()> {
    let mut config = config;
    if let SecretsAction::RotateKey { generate: true, .. } = &action {
        let Some(file) = key_file(&config) else {
            bail!(
                "the master key is not kept in a file (it is `secret_key`, or there is none): set the new key as \
                 `secret_key` and the old one in `secret_keys_previous`, restart the servers, then run \
                 `castellan secrets rotate-key` without --generate"
            );
        };
        let old = Sealer::load(&config)?.context("no master key to rotate")?;
        let aside = file.with_file_name(format!(
            "{}.previous-{}",
            file.file_name().and_then(|n| n.to_str()).unwrap_or("secret.key"),
            old.key_id()
        ));
        std::fs::rename(&file, &aside).with_context(|| format!("moving {} aside", file.display()))?;
        let id = Sealer::generate_file(&file)?;
        eprintln!(
            "new master key {id} in {} (the old one, {}, is now {})",
            file.display(),
            old.key_id(),
            aside.display()
        );
        // The embedded default file needs nothing in the configuration; any other
        // key file is named explicitly.
        if config.secret_key_file.is_some() || config.database_url.is_some() {
            config.secret_key_file = Some(file);
        }
    }
    let store = castellan_server::serve::open_store(&config).await?;
    let (state, system) =
        castellan_server::serve::prepare(store, config.clone(), castellan_server::access::system_clock()).await?;
    let sealer = state.sealer().map_err(|e| anyhow::anyhow!("{e}"))?;
    let (key_id, previous) = (sealer.key_id(), sealer.previous_key_ids());
    match action {
        SecretsAction::Status { .. } => {
            let sealed_values = castellan_server::rotation::status(&state).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            state.close().await;
            let out = Status { key_id, previous_key_ids: previous, sealed_values };
            emit(json, &out, |s| {
                let mut t = format!("master key: {}\nprevious:   {}\n", s.key_id, s.previous_key_ids.join(", "));
                for (k, n) in &s.sealed_values {
                    let role = if *k == s.key_id { "current" } else { "needs rotation" };
                    t.push_str(&format!("  {k}: {n} sealed values ({role})\n"));
                }
                t
            });
        }
        SecretsAction::RotateKey { forget_previous, .. } => {
            let out = castellan_server::rotation::rotate(&state, &system, |done, total| {
                if !json {
                    eprint!("\rre-sealing: {done}/{total}");
                    let _ = std::io::stderr().flush();
                }
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            state.close().await;
            if !json {
                eprintln!();
            }
            let leftover: i64 = out.by_key.iter().filter(|(k, _)| **k != out.key_id).map(|(_, n)| n).sum();
            if forget_previous {
                if leftover > 0 {
                    bail!("{leftover} values still need an earlier key; the key files were kept");
                }
                if let Some(file) = key_file(&config) {
                    for f in castellan_server::secrets::previous_files(&file)? {
                        std::fs::remove_file(&f).with_context(|| format!("removing {}", f.display()))?;
                        eprintln!("removed {}", f.display());
                    }
                }
            }
            emit(json, &out, |o| {
                format!(
                    "every secret value is sealed with master key {} ({} re-sealed, {} already were{})\n",
                    o.key_id,
                    o.resealed,
                    o.unchanged,
                    if o.signing_key_resealed { "; the URL-signing key too" } else { "" }
                )
            });
        }
    }
    Ok(())
}

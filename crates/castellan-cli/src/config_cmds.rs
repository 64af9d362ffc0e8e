//! `castellan config export|plan|apply`: an organization's administration state as
//! a file (TOML, or JSON), the changes a file would make, and making them.

use crate::client::Client;
use crate::output::emit;
use anyhow::{bail, Context, Result};
use castellan_api_types::{self as api, ConfigApplied, ConfigChange, ConfigPlan};
use clap::Subcommand;
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// `castellan config …`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Write the organization's whole administration state (groups, roles, grants,
    /// settings, projects, project groups, tags, environment variable names, …) as
    /// one document: TOML, or JSON with `--json` or an `-o` file ending in `.json`.
    /// Secret values are never part of it.
    Export {
        /// Write to this file instead of standard output.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Print the changes applying a document would make (`+` add, `~` change, `-`
    /// remove) and anything apply would refuse. The organization is `--org`, else the
    /// document's own.
    Plan {
        /// The document (TOML, or JSON when it ends in `.json`); `-` reads standard input.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Apply a document: its plan is printed, confirmed (or `--yes`), then made in one
    /// transaction, exactly as planned (if the organization changed meanwhile, nothing
    /// is changed and you plan again).
    Apply {
        /// The document (TOML, or JSON when it ends in `.json`); `-` reads standard input.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
    },
}

/// A document's bytes and media type.
fn read(file: &Path) -> Result<(Vec<u8>, &'static str)> {
    let bytes = if file == Path::new("-") {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).context("reading standard input")?;
        b
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
    };
    let json = file.extension().is_some_and(|e| e == "json")
        || bytes.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b == b'{');
    Ok((bytes, if json { "application/json" } else { "application/toml" }))
}

/// Runs `castellan config …`.
pub async fn config(c: &Client, json: bool, action: ConfigAction) -> Result<()> {
    match action {
        ConfigAction::Export { output } => {
            let as_json = json || output.as_ref().is_some_and(|o| o.extension().is_some_and(|e| e == "json"));
            let text = if as_json {
                let v: Value = c.get("/v1/config/export", &[]).await?;
                let mut s = serde_json::to_string_pretty(&v)?;
                s.push('\n');
                s
            } else {
                c.get_text("/v1/config/export", &[("format", "toml".into())], "application/toml").await?
            };
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                    if !json {
                        println!("wrote {}", path.display());
                    }
                }
                None => print!("{text}"),
            }
        }
        ConfigAction::Plan { file } => {
            let (body, media) = read(&file)?;
            let plan: ConfigPlan = c.post_raw("/v1/config/plan", &[], media, body).await?;
            emit(json, &plan, render_plan);
        }
        ConfigAction::Apply { file, yes } => {
            let (body, media) = read(&file)?;
            let plan: ConfigPlan = c.post_raw("/v1/config/plan", &[], media, body.clone()).await?;
            if !json {
                print!("{}", render_plan(&plan));
            }
            if !plan.refusals.is_empty() {
                bail!("not applied: {} refusal(s); nothing was changed", plan.refusals.len());
            }
            if !plan.changes.is_empty() && !yes && !confirm(&plan)? {
                bail!("not applied: confirm with `y`, or pass --yes");
            }
            let query = [("expected_plan_hash", plan.plan_hash.clone())];
            let applied: ConfigApplied = c.post_raw("/v1/config/apply", &query, media, body).await?;
            emit(json, &applied, |a| match a.revision {
                Some(rev) => {
                    format!("applied {} change(s) to `{}` at revision {rev}\n", a.changes.len(), a.organization)
                }
                None => format!("nothing to apply: `{}` already matches the document\n", a.organization),
            });
        }
    }
    Ok(())
}

fn confirm(plan: &ConfigPlan) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(false);
    }
    eprint!("apply these {} change(s) to `{}`? [y/N] ", plan.changes.len(), plan.organization);
    std::io::stderr().flush().ok();
    let mut line = String::new();
    stdin.lock().read_line(&mut line).context("reading the answer")?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// A plan for people: a summary, one line per change with what it changes, the
/// refusals and notes, and the plan's hash.
pub fn render_plan(p: &ConfigPlan) -> String {
    let count = |a: api::ConfigAction| p.changes.iter().filter(|c| c.action == a).count();
    let mut out = if p.changes.is_empty() {
        format!("`{}` already matches the document: nothing to change.\n", p.organization)
    } else {
        format!(
            "plan for `{}`: {} to add, {} to change, {} to remove\n\n",
            p.organization,
            count(api::ConfigAction::Add),
            count(api::ConfigAction::Change),
            count(api::ConfigAction::Remove)
        )
    };
    for c in &p.changes {
        out.push_str(&render_change(c));
    }
    if !p.refusals.is_empty() {
        out.push_str("\nrefused (apply changes nothing while any remains):\n");
        for r in &p.refusals {
            out.push_str(&format!("  ! {} {}: {}\n", r.kind, r.name, r.reason));
        }
    }
    if !p.notes.is_empty() {
        out.push_str("\nnotes:\n");
        for n in &p.notes {
            out.push_str(&format!("  * {n}\n"));
        }
    }
    if !p.changes.is_empty() {
        out.push_str(&format!("\nplan hash: {}\n", p.plan_hash));
    }
    out
}

fn render_change(c: &ConfigChange) -> String {
    let sign = match c.action {
        api::ConfigAction::Add => '+',
        api::ConfigAction::Change => '~',
        api::ConfigAction::Remove => '-',
    };
    let mut out = format!("{sign} {} {}\n", c.kind, c.name);
    let fields = |v: &Option<Value>| v.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
    let (before, after) = (fields(&c.before), fields(&c.after));
    // The fields that name the entry are in its header line already.
    let skip = ["name", "kind", "on", "user", "service_account", "group", "permission", "role", "restrict_object_type"];
    let show = |v: Option<&Value>| v.map(Value::to_string).unwrap_or_else(|| "(none)".into());
    match c.action {
        api::ConfigAction::Add => {
            for (k, v) in after.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
                out.push_str(&format!("    {k}: {v}\n"));
            }
        }
        api::ConfigAction::Change => {
            let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (b, a) = (before.get(k), after.get(k));
                if b != a {
                    out.push_str(&format!("    {k}: {} -> {}\n", show(b), show(a)));
                }
            }
        }
        api::ConfigAction::Remove => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use castellan_api_types::ConfigRefusal;
    use serde_json::json;

    #[test]
    fn a_plan_reads_as_a_diff() {
        let plan = ConfigPlan {
            organization: "acme".into(),
            changes: vec![
                ConfigChange {
                    action: api::ConfigAction::Add,
                    kind: "group".into(),
                    name: "New".into(),
                    before: None,
                    after: Some(json!({"name": "New", "users": ["bob@acme.example"]})),
                },
                ConfigChange {
                    action: api::ConfigAction::Change,
                    kind: "role".into(),
                    name: "Auditor".into(),
                    before: Some(json!({"name": "Auditor", "permissions": ["read"]})),
                    after: Some(json!({"name": "Auditor", "description": "d", "permissions": ["read"]})),
                },
                ConfigChange {
                    action: api::ConfigAction::Remove,
                    kind: "grant".into(),
                    name: "group Viewers: read on org_project".into(),
                    before: Some(json!({})),
                    after: None,
                },
            ],
            refusals: vec![ConfigRefusal {
                kind: "member".into(),
                name: "c@x.example".into(),
                reason: "not one".into(),
            }],
            notes: vec!["project `old` is not in the document".into()],
            plan_hash: "abc".into(),
        };
        assert_eq!(
            render_plan(&plan),
            "plan for `acme`: 1 to add, 1 to change, 1 to remove\n\n\
             + group New\n    users: [\"bob@acme.example\"]\n\
             ~ role Auditor\n    description: (none) -> \"d\"\n\
             - grant group Viewers: read on org_project\n\
             \nrefused (apply changes nothing while any remains):\n  ! member c@x.example: not one\n\
             \nnotes:\n  * project `old` is not in the document\n\
             \nplan hash: abc\n"
        );
    }
}

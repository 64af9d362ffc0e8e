//! `braintrust push` (the official Python CLI) of prompts and LLM scorers defined in
//! code, through `POST /insert-functions`, on SQLite and PostgreSQL.

use crate::common;
use crate::support;

use common::{Backend, TestApp};
use serde_json::{json, Value};
use support::{member, sdk_env};

on_both_backends!(
    #[ignore = "needs the official Braintrust clients: scripts/test runs it"]
    braintrust_push_creates_prompts_and_scorers_and_respects_if_exists
);

const DEFINITIONS: &str = r#"
import braintrust

project = braintrust.projects.create(name="pushed")
project.prompts.create(
    name="Greeter",
    slug="greeter",
    description="says hi",
    model="gpt-4o",
    messages=[{"role": "system", "content": "Say hi to {{name}}."}],
)
project.scorers.create(
    name="Polite",
    slug="polite",
    messages=[{"role": "user", "content": "Is this polite? {{output}}"}],
    model="gpt-4o",
    use_cot=True,
    choice_scores={"yes": 1, "no": 0},
)
"#;

/// Runs `python -m braintrust push FILE [args]` in a fresh directory; (success, output).
async fn push(app: &TestApp, key: &str, args: &[&str]) -> (bool, String) {
    let py = common::python().expect("python");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("defs.py"), DEFINITIONS).expect("write");
    let env = sdk_env(app, key);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(py)
            .args(["-m", "braintrust.cli", "push", "defs.py"])
            .args(&args)
            .current_dir(dir.path())
            .envs(env)
            .output()
            .expect("run braintrust push");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    })
    .await
    .expect("join")
}

async fn braintrust_push_creates_prompts_and_scorers_and_respects_if_exists(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (ok, out) = push(&app, &owner, &[]).await;
    assert!(ok, "{out}");
    let (_, prompts) = app.get("/v1/prompt?slug=greeter", &owner).await;
    let greeter = &prompts["objects"][0];
    assert_eq!(
        (greeter["name"].as_str(), greeter["description"].as_str()),
        (Some("Greeter"), Some("says hi")),
        "{prompts}"
    );
    assert_eq!(greeter["prompt_data"]["options"]["model"], "gpt-4o", "{greeter}");
    assert_eq!(greeter["prompt_data"]["prompt"]["messages"][0]["content"], "Say hi to {{name}}.");
    let (_, scorers) = app.get("/v1/function?slug=polite", &owner).await;
    let polite = &scorers["objects"][0];
    assert_eq!(polite["function_type"], "scorer", "{scorers}");
    assert_eq!(polite["prompt_data"]["parser"]["choice_scores"], json!({"yes": 1, "no": 0}), "{polite}");
    let first = greeter["_xact_id"].clone();
    // Again: refused by default (the slug exists), replaced on request.
    let (ok, out) = push(&app, &owner, &[]).await;
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = push(&app, &owner, &["--if-exists", "replace"]).await;
    assert!(ok, "{out}");
    let (_, again) = app.get("/v1/prompt?slug=greeter", &owner).await;
    assert_ne!(again["objects"][0]["_xact_id"], first, "a new version");
    let (ok, out) = push(&app, &owner, &["--if-exists", "ignore"]).await;
    assert!(ok, "{out}");
    // A Viewer can read the project but push nothing into it.
    let viewer = member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    let before: Value = app.get("/v1/function", &owner).await.1;
    let (ok, out) = push(&app, &viewer.key, &["--if-exists", "replace"]).await;
    assert!(!ok && out.contains("403"), "{out}");
    assert_eq!(app.get("/v1/function", &owner).await.1, before, "nothing changed");
    app.stop().await;
}

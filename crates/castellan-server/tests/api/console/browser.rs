//! A real headless Chromium, driven through chromedriver (WebDriver) by fantoccini,
//! against a real server. `CASTELLAN_CHROMEDRIVER` (and `CASTELLAN_CHROMIUM`, the
//! browser binary) and `CASTELLAN_AXE` (axe-core's `axe.min.js`) are set up by
//! `scripts/test`; the tests that need them are #[ignore]d, so they run only when
//! asked for, and asked for without them they fail rather than pass untested.

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::time::Duration;

fn required(var: &str, what: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("needs {what}: set {var}, or run scripts/test, which installs it and sets it"))
}

/// Where screenshots go: `target/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().map(|p| p.join("console-screenshots")).unwrap_or(tmp);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// A free TCP port on localhost.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One chromedriver process and one browser session.
pub struct Browser {
    pub client: Client,
    pub base: String,
    /// `sqlite` or `postgres`, for screenshot names.
    pub tag: String,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    axe: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (`javascript: false` turns
    /// scripts off, for the no-JavaScript run).
    pub async fn start(base: &str, tag: &str, javascript: bool) -> Browser {
        let driver_path = required("CASTELLAN_CHROMEDRIVER", "chromedriver (Debian's chromium-driver)");
        let chromium = required("CASTELLAN_CHROMIUM", "Chromium (Debian's chromium)");
        let axe_path = required("CASTELLAN_AXE", "axe-core's axe.min.js (npm axe-core)");
        let axe = std::fs::read_to_string(&axe_path).unwrap_or_else(|e| panic!("read {axe_path}: {e}"));
        let port = free_port();
        let driver = tokio::process::Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {driver_path}: {e}"));
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1360,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if !javascript {
            args.push("--blink-settings=scriptEnabled=false".into());
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        let mut opts = serde_json::json!({"binary": chromium, "args": args});
        if !javascript {
            opts["prefs"] = serde_json::json!({"profile.managed_default_content_settings.javascript": 2});
        }
        caps.insert("goog:chromeOptions".into(), opts);
        let url = format!("http://127.0.0.1:{port}");
        let mut last = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&url).await {
                Ok(client) => {
                    return Browser {
                        client,
                        base: base.to_owned(),
                        tag: tag.to_owned(),
                        driver,
                        _profile: profile,
                        axe,
                    }
                }
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("could not start a browser session through {driver_path}: {last}");
    }

    /// Opens a path of the server.
    pub async fn go(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        let body = self.client.wait().for_element(Locator::Css("body")).await.expect("body");
        body.text().await.unwrap_or_default()
    }

    /// The page's HTML.
    pub async fn html(&self) -> String {
        self.client.source().await.expect("source")
    }

    /// The current path.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        let mut p = url.path().to_owned();
        if let Some(q) = url.query() {
            p.push('?');
            p.push_str(q);
        }
        p
    }

    /// Fills an input (clearing it first).
    pub async fn fill(&self, css: &str, value: &str) {
        let el = self.client.wait().for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.clear().await.ok();
        el.send_keys(value).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Sets an input's value directly (date and time inputs take keystrokes in the
    /// browser's locale format).
    pub async fn set_value(&self, css: &str, value: &str) {
        self.client
            .execute(
                "document.querySelector(arguments[0]).value = arguments[1]; return true;",
                vec![css.into(), value.into()],
            )
            .await
            .unwrap_or_else(|e| panic!("set {css}: {e}"));
    }

    /// Clicks an element.
    pub async fn click(&self, css: &str) {
        let el = self.client.wait().for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Selects an option by its value.
    pub async fn select(&self, css: &str, value: &str) {
        let el = self.client.wait().for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in {css}: {e}"));
    }

    /// Waits for an element and answers its text.
    pub async fn wait_for(&self, css: &str) -> String {
        let el = self.client.wait().for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.text().await.unwrap_or_default()
    }

    /// Whether an element is there.
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Whether a checkbox is checked.
    pub async fn checked(&self, css: &str) -> bool {
        let el = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find {css}: {e}"));
        el.prop("checked").await.expect("checked").as_deref() == Some("true")
    }

    /// Waits until the page's text contains `needle` (htmx swaps are asynchronous).
    pub async fn wait_text(&self, needle: &str) -> String {
        let mut text = String::new();
        for _ in 0..100 {
            text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never showed `{needle}`; it shows:\n{text}");
    }

    /// Waits until the path starts with `prefix`.
    pub async fn wait_path(&self, prefix: &str) {
        let mut p = String::new();
        for _ in 0..100 {
            p = self.path().await;
            if p.starts_with(prefix) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never reached `{prefix}`; at `{p}`");
    }

    /// Runs axe-core on the page: no serious or critical violation.
    pub async fn axe(&self, name: &str) {
        self.client.execute(&format!("{}\nreturn true;", self.axe), vec![]).await.expect("inject axe-core");
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, {resultTypes: ['violations']}).then(r => done(
                r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' + v.nodes.map(n => n.target.join(' ')).join(', '))
            )).catch(e => done(['axe failed: ' + e]));
        "#;
        let out = self.client.execute_async(script, vec![]).await.expect("run axe-core");
        let violations: Vec<String> = serde_json::from_value(out).unwrap_or_default();
        assert!(
            violations.is_empty(),
            "axe-core found serious or critical problems on {name}:\n{}",
            violations.join("\n")
        );
    }

    /// Saves a screenshot of the page as `<tag>-<name>.png`.
    pub async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = screenshot_dir().join(format!("{}-{name}.png", self.tag));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Checks the page with axe-core and saves its screenshot.
    pub async fn check(&self, name: &str) {
        self.axe(name).await;
        self.shot(name).await;
    }

    /// Signs in through the sign-in form.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.go("/login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("form button[type=submit]").await;
        self.wait_path("/o/").await;
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

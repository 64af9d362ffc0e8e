//! Single sign-on in a real headless Chromium: the owner's Settings → Single sign-on
//! page (a refused form keeps what was typed, enforcement switched on and off), a
//! person signing in with "Sign in with SSO" through the real OpenID provider's
//! pages, and a failed sign-in shown on the sign-in page.

use super::browser::Browser;
use crate::common;
use crate::sso_flow::{setup, PASSWORD};
use common::Backend;
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    #[ignore = "needs Chromium, chromedriver, axe-core and the OpenID test provider: scripts/test runs it"]
    sso_in_the_browser
);

async fn sso_in_the_browser(b: Backend) {
    let Some(t) = setup(b, None, 0).await else { return };
    let tag = format!("{}-sso", super::tag(b));
    let (s, v) = t.app.post("/api/auth/password", &t.owner, json!({"new_password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // The owner's page: the configuration the API made, the redirect URI to register.
    let owner = Browser::start(&t.app.base, &tag, true).await;
    owner.sign_in("ada@acme.example", PASSWORD).await;
    owner.go("/o/acme/settings/single-sign-on").await;
    let text = owner.wait_text("At your identity provider").await;
    assert!(text.contains(&format!("{}/auth/sso/callback", t.app.base)), "the redirect URI: {text}");
    assert!(text.contains("okta") && text.contains("eng → Engineers") && text.contains("Off"), "{text}");
    owner.check("settings").await;
    // A refused form shows the reason next to the field and keeps what was typed.
    owner.click("button[commandfor=create-dialog]").await;
    owner.fill("#sso-name", "entra").await;
    owner.set_value("#sso-issuer", "http://login.example/tenant").await;
    owner.fill("#sso-client_id", "castellan-entra").await;
    owner.fill("#sso-group_map", "admins=Owners").await;
    owner.click("#create-dialog button.primary").await;
    owner.wait_for("#sso-issuer-error").await;
    assert_eq!(
        owner
            .client
            .find(fantoccini::Locator::Css("#sso-client_id"))
            .await
            .expect("f")
            .prop("value")
            .await
            .expect("v")
            .as_deref(),
        Some("castellan-entra")
    );
    owner.check("settings-refused").await;
    // Enforcement is refused until someone signed in through it.
    owner.go("/o/acme/settings/single-sign-on").await;
    owner.click("button[aria-label='Enforce okta']").await;
    owner.wait_text("once someone has signed in").await;

    // A person signs in with "Sign in with SSO", through the provider's pages.
    let alice = Browser::start(&t.app.base, &tag, true).await;
    alice.go("/login").await;
    alice.wait_for("#sso-submit").await;
    alice.check("sign-in").await;
    alice.fill("#org", "acme").await;
    alice.click("#sso-submit").await;
    alice.fill("input[name=login]", "alice").await;
    alice.fill("input[name=password]", "any").await;
    alice.click("button[type=submit]").await;
    // The provider's consent page, then back to the console, signed in.
    alice.wait_text("Authorize").await;
    alice.click("button[type=submit]").await;
    alice.wait_path("/o/acme").await;
    let text = alice.wait_text("Projects").await;
    assert!(text.contains("alice@acme.example") || text.contains("Alice"), "signed in as alice: {text}");
    alice.check("signed-in").await;
    alice.close().await;

    // Now the owner may enforce it.
    owner.go("/o/acme/settings/single-sign-on").await;
    owner.click("button[aria-label='Enforce okta']").await;
    owner.wait_text("Enforcement on").await;
    assert!(owner.has("button[aria-label='Stop enforcing okta']").await);
    let (_, list) = t.app.get("/v1/sso_config", &t.owner).await;
    assert_eq!(list["objects"][0]["enforced"], true, "{list}");
    owner.check("settings-enforced").await;
    owner.close().await;

    // A sign-in that fails lands on the sign-in page with the reason.
    let stranger = Browser::start(&t.app.base, &tag, true).await;
    stranger.go("/auth/sso/callback?code=x&state=y").await;
    let msg = stranger.wait_for("#sso-error").await;
    assert!(msg.contains("start the sign-in again"), "{msg}");
    stranger.check("sign-in-failed").await;
    stranger.go("/login").await;
    stranger.fill("#org", "no-such-org").await;
    stranger.click("#sso-submit").await;
    let msg = stranger.wait_for("#sso-error").await;
    assert!(msg.contains("no single sign-on"), "{msg}");
    assert_eq!(
        stranger
            .client
            .find(fantoccini::Locator::Css("#org"))
            .await
            .expect("org")
            .prop("value")
            .await
            .expect("v")
            .as_deref(),
        Some("no-such-org")
    );
    stranger.close().await;
    t.op.stop().await;
    t.app.stop().await;
}

// The OpenID provider the single sign-on tests start (npm `oidc-provider`, pinned in
// package.json here; installed by `scripts/setup-node.sh --oidc`).
//
//   node provider.mjs genkey                 prints a new RS256 private JWK (with a kid)
//   node provider.mjs                        serves; settings from the environment:
//     OIDC_NODE_MODULES   the node_modules directory holding oidc-provider (required)
//     OIDC_PORT           port on 127.0.0.1 (0: any free one)
//     OIDC_CLIENTS        JSON array of oidc-provider client metadata
//     OIDC_KEYS           JSON array of private JWKs; the first signs (default: one new key)
//     OIDC_CLAIMS_IN_ID_TOKEN  "1": scope claims go into the ID token too (default:
//                         only userinfo has email and groups, as strict providers do)
//
// It prints `listening <issuer>` once it serves. Accounts (any password; the login
// form of devInteractions takes the account id as login):
//   alice       alice@acme.example, verified, groups [eng, staff]
//   bob         bob@acme.example, verified, no groups
//   unverified  eve@acme.example, email_verified false
//   outsider    mallory@evil.example, verified
//   <anything>  <it>@acme.example, verified, no groups
// Test controls (not part of any real provider):
//   POST /__test/tamper {"mode": M}  the next token responses' ID token is changed:
//     signature (a flipped signature byte), unknown_kid (signed by a key not in JWKS),
//     expired, nonce, iss, aud (re-signed with that claim wrong), or null (off)
//   POST /__test/accounts {id: claims}  adds or replaces accounts
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const modules = process.env.OIDC_NODE_MODULES;
if (!modules) {
    console.error("OIDC_NODE_MODULES is not set");
    process.exit(2);
}
const load = (p) => import(pathToFileURL(join(modules, p)).href);
const jose = await load("jose/dist/webapi/index.js");

async function newKey() {
    const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
    const jwk = await jose.exportJWK(privateKey);
    jwk.kid = `k-${Math.random().toString(36).slice(2, 10)}`;
    jwk.alg = "RS256";
    jwk.use = "sig";
    return jwk;
}

if (process.argv[2] === "genkey") {
    console.log(JSON.stringify(await newKey()));
    process.exit(0);
}

const { default: Provider } = await load("oidc-provider/lib/index.js");
const port = Number(process.env.OIDC_PORT || 0);
const keys = process.env.OIDC_KEYS ? JSON.parse(process.env.OIDC_KEYS) : [await newKey()];
const clients = JSON.parse(process.env.OIDC_CLIENTS || "[]");
const accounts = {
    alice: { email: "alice@acme.example", email_verified: true, name: "Alice", groups: ["eng", "staff"] },
    bob: { email: "bob@acme.example", email_verified: true, name: "Bob", groups: [] },
    unverified: { email: "eve@acme.example", email_verified: false, name: "Eve", groups: [] },
    outsider: { email: "mallory@evil.example", email_verified: true, name: "Mallory", groups: [] },
};
let tamper = null;

// Listen first: the issuer needs the port.
import http from "node:http";
let handler = (_req, res) => res.end();
const server = http.createServer((req, res) => handler(req, res));
await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
    clients,
    jwks: { keys },
    pkce: { required: () => true },
    features: {
        devInteractions: { enabled: true },
        userinfo: { enabled: true },
    },
    scopes: ["openid", "email", "profile", "groups", "offline_access"],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"], groups: ["groups"] },
    conformIdTokenClaims: process.env.OIDC_CLAIMS_IN_ID_TOKEN !== "1",
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 600, Grant: 600 },
    async findAccount(_ctx, id) {
        const claims = accounts[id] || { email: `${id}@acme.example`, email_verified: true, name: id, groups: [] };
        return { accountId: id, async claims() { return { sub: id, ...claims }; } };
    },
});
provider.proxy = false;

// Test controls.
provider.use(async (ctx, next) => {
    if (ctx.method === "POST" && ctx.path.startsWith("/__test/")) {
        const chunks = [];
        for await (const c of ctx.req) chunks.push(c);
        const body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
        if (ctx.path === "/__test/tamper") tamper = body.mode ?? null;
        else if (ctx.path === "/__test/accounts") Object.assign(accounts, body);
        else return next();
        ctx.body = { ok: true };
        return;
    }
    await next();
    if (ctx.path === "/token" && tamper && ctx.body && ctx.body.id_token) {
        ctx.body = { ...ctx.body, id_token: await tampered(ctx.body.id_token, tamper) };
    }
});

async function tampered(token, mode) {
    const [h, p, s] = token.split(".");
    if (mode === "signature") {
        const sig = Buffer.from(s, "base64url");
        sig[sig.length - 1] ^= 1;
        return `${h}.${p}.${sig.toString("base64url")}`;
    }
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    let key = keys[0];
    const now = Math.floor(Date.now() / 1000);
    if (mode === "unknown_kid") key = await newKey();
    else if (mode === "expired") Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
    else if (mode === "nonce") claims.nonce = "not-the-nonce";
    else if (mode === "iss") claims.iss = "http://127.0.0.1:1";
    else if (mode === "aud") claims.aud = "someone-else";
    const signer = await jose.importJWK(key, "RS256");
    return new jose.SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" }).sign(signer);
}

handler = provider.callback();
console.log(`listening ${issuer}`);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));

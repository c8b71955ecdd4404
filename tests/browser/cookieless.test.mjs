// Why the query mode exists, in Debian's headless Chromium: the page on one
// site (app.player.test), cfmint serve and the edge on another
// (auth.media.test, cdn.media.test), all HTTPS. With third-party cookies
// blocked, the cookies cfmint sets never reach the edge and hls.js gets 403;
// with `deliver: "query"` and cfmint.js's hlsConfig(), hls.js plays across
// a refresh with no 403. The same page with third-party cookies allowed
// plays in cookie mode too, so the blocking is what breaks it.
//
// The page mints with a bearer token (a session cookie on the other site
// would be blocked the same way).
//
//   node cookieless.test.mjs      (CFMINT_BIN: the cfmint binary to run)

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { connect, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { binary, root } from "./harness.mjs";

const TTL = 20;
const SECRET = "cookieless-test-secret-that-is-at-least-32-bytes";

function log(...args) {
  console.log("[cookieless]", ...args);
}

function freePort() {
  return new Promise((resolvePort) => {
    const server = createNetServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

function b64url(data) {
  return Buffer.from(data).toString("base64url");
}

function bearer(sub) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = b64url(JSON.stringify({ sub, iat: now, exp: now + 3600 }));
  const mac = createHmac("sha256", SECRET).update(`${head}.${claims}`).digest("base64url");
  return `${head}.${claims}.${mac}`;
}

function start(args, what) {
  const child = spawn(binary, args, { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, CFMINT_LOG: "warn" } });
  child.on("exit", (code, signal) => {
    if (code !== null && code !== 0) log(`${what} exited with ${code}`);
  });
  return child;
}

async function waitForPort(port, what) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const open = await new Promise((done) => {
      const socket = connect(port, "127.0.0.1");
      socket.on("connect", () => {
        socket.destroy();
        done(true);
      });
      socket.on("error", () => done(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const work = mkdtempSync(join(tmpdir(), "cfmint-cookieless-"));
const [apiPort, edgePort, pagePort] = [await freePort(), await freePort(), await freePort()];
const page = `https://app.player.test:${pagePort}`;
const api = `https://auth.media.test:${apiPort}`;
const edge = `https://cdn.media.test:${edgePort}`;

execFileSync("openssl", [
  "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=cfmint test",
  "-keyout", join(work, "tls.key"), "-out", join(work, "tls.crt"),
  "-addext", "subjectAltName=DNS:app.player.test,DNS:auth.media.test,DNS:cdn.media.test",
], { stdio: "ignore" });
execFileSync(binary, ["keygen", "--type", "ecdsa", "--out", join(work, "keys")], { stdio: "ignore" });
const book = join(work, "origin/audiobooks/demo");
mkdirSync(book, { recursive: true });
cpSync(resolve(root, "demo/audiobook/chapter-1"), join(book, "chapter-1"), { recursive: true });

writeFileSync(join(work, "serve.toml"), `
[server]
listen = "127.0.0.1:${apiPort}"
admin_listen = ""
drain_delay = "0s"
tls_cert = "${work}/tls.crt"
tls_key = "${work}/tls.key"
[cloudfront]
base_url = "${edge}"
cookie_domain = "media.test"
[keys]
active = "KCOOKIELESS"
[[keys.key]]
id = "KCOOKIELESS"
file = "${work}/keys/private.pem"
[mint]
ttl = "${TTL}s"
min_ttl = "10s"
expiry_rounding = "1s"
[auth.jwt]
algorithms = ["HS256"]
hmac_secret = "${SECRET}"
[[grants]]
paths = ["/audiobooks/*"]
[cors]
allowed_origins = ["${page}"]
[rate_limit]
mint_per_address = "off"
mint_per_identity = "off"
`);
writeFileSync(join(work, "edge.toml"), `
[edge]
listen = "127.0.0.1:${edgePort}"
public_url = "${edge}"
origin_dir = "${work}/origin"
allowed_origins = ["${page}"]
tls_cert = "${work}/tls.crt"
tls_key = "${work}/tls.key"
[[edge.key]]
id = "KCOOKIELESS"
file = "${work}/keys/public.pem"
`);

// The player page: mints with the bearer token, plays the chapter with
// hls.js in the mode asked for, and counts what happened.
const html = `<!doctype html><meta charset="utf-8"><title>player</title>
<audio id="player" muted loop></audio>
<script src="/hls.js"></script>
<script src="${api}/cfmint.js"></script>
<script>
window.result = { mints: 0, fragments: 0, forbidden: 0, fragmentsAfterRefresh: 0, errors: [] };
window.play = async (mode) => {
  const result = window.result;
  const session = new Cfmint({
    api: ${JSON.stringify(api)},
    path: "/audiobooks/demo/",
    token: ${JSON.stringify(bearer("listener"))},
    deliver: mode === "query" ? "query" : undefined,
    onMint() { result.mints += 1; },
    onError(error) { result.errors.push("mint: " + error.message); },
  });
  await session.start();
  const config = { maxBufferLength: 4, maxMaxBufferLength: 6, backBufferLength: 0 };
  const hls = new Hls(mode === "query"
    ? session.hlsConfig(config)
    : Object.assign(config, { xhrSetup(xhr) { xhr.withCredentials = true; } }));
  hls.on(Hls.Events.FRAG_LOADED, () => {
    result.fragments += 1;
    if (result.mints > 1) result.fragmentsAfterRefresh += 1;
  });
  hls.on(Hls.Events.ERROR, (_, data) => {
    if (data.response && data.response.code === 403) result.forbidden += 1;
    if (data.fatal) { result.errors.push(data.details); hls.destroy(); }
  });
  hls.loadSource(${JSON.stringify(edge + "/audiobooks/demo/chapter-1/index.m3u8")});
  hls.attachMedia(document.getElementById("player"));
  document.getElementById("player").play().catch(() => {});
};
</script>`;
const tls = { cert: readFileSync(join(work, "tls.crt")), key: readFileSync(join(work, "tls.key")) };
const hlsJs = readFileSync(resolve(root, "demo/web/vendor/hls.light.min.js"));
const pageServer = createServer(tls, (request, response) => {
  if (request.url === "/hls.js") {
    response.writeHead(200, { "content-type": "text/javascript" }).end(hlsJs);
  } else {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
  }
});
await new Promise((r) => pageServer.listen(pagePort, "127.0.0.1", r));

const children = [
  start(["serve", "--config", join(work, "serve.toml")], "cfmint serve"),
  start(["edge", "--config", join(work, "edge.toml")], "cfmint edge"),
];
const args = [
  "--host-resolver-rules=MAP *.player.test 127.0.0.1, MAP *.media.test 127.0.0.1",
  "--ignore-certificate-errors",
  "--autoplay-policy=no-user-gesture-required",
];

/** A browser profile with third-party cookies blocked or allowed. */
async function browserWith(blocked) {
  const profile = mkdtempSync(join(work, blocked ? "blocked-" : "allowed-"));
  mkdirSync(join(profile, "Default"));
  // 1: block third-party cookies (the setting Firefox and Safari ship with).
  writeFileSync(join(profile, "Default/Preferences"), JSON.stringify({
    profile: { cookie_controls_mode: blocked ? 1 : 0, block_third_party_cookies: blocked },
  }));
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: blocked ? [...args, "--test-third-party-cookie-phaseout"] : args,
  });
}

/** Plays in `mode` until `until` holds or `seconds` pass; the page's counts. */
async function play(context, mode, until, seconds) {
  const tab = await context.newPage();
  tab.on("pageerror", (error) => log("page error:", error.message));
  await tab.goto(page + "/");
  await tab.evaluate((mode) => window.play(mode), mode);
  try {
    await tab.waitForFunction(until, null, { timeout: seconds * 1000, polling: 250 });
  } catch (_) {
    // The counts below say what happened.
  }
  const result = await tab.evaluate(() => window.result);
  const cookies = (await context.cookies(edge)).filter((c) => c.name.startsWith("CloudFront-")).length;
  await tab.close();
  return { ...result, cookiesForEdge: cookies };
}

try {
  await waitForPort(apiPort, "cfmint serve");
  await waitForPort(edgePort, "cfmint edge");

  const blocked = await browserWith(true);
  const cookieMode = await play(blocked, "cookies", () => window.result.forbidden > 0 || window.result.fragments > 0, 30);
  log("third-party cookies blocked, cookie mode:", JSON.stringify(cookieMode));
  assert.equal(cookieMode.mints, 1, "the mint itself succeeds (a bearer token)");
  assert.equal(cookieMode.cookiesForEdge, 0, "the browser kept no CloudFront cookie for the edge");
  assert.ok(cookieMode.forbidden > 0, "the edge refused the player");
  assert.equal(cookieMode.fragments, 0, "nothing played");

  const queryMode = await play(blocked, "query", () => window.result.fragmentsAfterRefresh >= 2, TTL * 3);
  log("third-party cookies blocked, query mode:", JSON.stringify(queryMode));
  assert.ok(queryMode.mints >= 2, "refreshed at least once");
  assert.ok(queryMode.fragmentsAfterRefresh >= 2, "segments loaded with the refreshed query");
  assert.equal(queryMode.forbidden, 0, "no 403");
  assert.deepEqual(queryMode.errors, []);
  await blocked.close();

  const allowed = await browserWith(false);
  const control = await play(allowed, "cookies", () => window.result.fragments >= 2 || window.result.forbidden > 0, 30);
  log("third-party cookies allowed, cookie mode:", JSON.stringify(control));
  assert.ok(control.fragments >= 2 && control.forbidden === 0, "with third-party cookies allowed, cookies play");
  await allowed.close();
  log("ok");
} finally {
  pageServer.close();
  for (const child of children) child.kill("SIGTERM");
}

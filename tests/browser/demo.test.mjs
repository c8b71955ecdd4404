// End-to-end: `cfmint demo` in Debian's headless Chromium, driven by
// playwright-core (which downloads nothing; Chromium is /usr/bin/chromium).
//
// Logs in, mints, plays the chapter through the edge, and checks from the
// browser's side and the edge's: every playlist and segment fetched with 200
// and counted at the edge, the CloudFront cookies HttpOnly/Secure/SameSite=None
// with the right Domain and Path and invisible to document.cookie, playback
// across two refreshes without a 403, the page showing a refresh and the
// edge's counts 30 s after play, and after logout a stopped player, reset
// fields and the edge's 403 on the page. Then the cookie-less player switch:
// no CloudFront cookie, every edge request signed in its query string, across
// a refresh. The layout at 1280 and 390 px: nothing wraps that should not,
// nothing overflows, and the page says which delivery is on. Screenshots:
// target/browser/.
//
//   node demo.test.mjs            (CFMINT_BIN: the cfmint binary to run)

import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { root, startDemo, waitFor } from "./harness.mjs";

const shots = resolve(root, "target/browser");

function log(...args) {
  console.log("[browser]", ...args);
}

async function run(name, extraArgs, expect) {
  log(`== ${name}`);
  const { child, urls } = await startDemo(extraArgs);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--autoplay-policy=no-user-gesture-required",
      ...(expect.browserArgs || []),
    ],
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const edgeResponses = [];
    page.on("response", (response) => {
      if (response.url().startsWith(urls.edge + "/audiobooks/")) {
        edgeResponses.push({ path: new URL(response.url()).pathname, status: response.status(), at: Date.now() });
      }
    });
    page.on("pageerror", (error) => log("page error:", error.message));

    await page.goto(urls.page + "/");
    await waitFor(page, () => window.demo.ready === true, "the page to be ready");
    const roles = await page.evaluate(() => ["role-page", "role-api", "role-edge"].map((id) => document.getElementById(id).textContent));
    assert.deepEqual(roles, [urls.page, urls.api, urls.edge], "the three roles name their addresses");
    await page.click("#play");
    const playedAt = Date.now();
    await waitFor(page, () => window.demo.fragments >= 2, "the first segments");
    await waitFor(page, () => !document.getElementById("player").paused, "playback");

    // Cookies as the browser holds them, with every flag.
    const cdp = await context.newCDPSession(page);
    const { cookies } = await cdp.send("Network.getAllCookies");
    for (const name of ["CloudFront-Policy", "CloudFront-Signature", "CloudFront-Key-Pair-Id"]) {
      const cookie = cookies.find((c) => c.name === name);
      assert.ok(cookie, `${name} in the cookie store`);
      assert.equal(cookie.httpOnly, true, `${name} HttpOnly`);
      assert.equal(cookie.secure, true, `${name} Secure`);
      assert.equal(cookie.sameSite, "None", `${name} SameSite`);
      assert.equal(cookie.domain, expect.domain, `${name} Domain`);
      assert.equal(cookie.path, "/", `${name} Path`);
    }
    const visible = await page.evaluate(() => document.cookie);
    assert.ok(!visible.includes("CloudFront"), `document.cookie shows no CloudFront cookie: ${visible}`);

    // 30 s after play: a refresh has happened (at 80% of the lifetime) and
    // the edge's counts are on the page.
    await page.waitForTimeout(Math.max(0, playedAt + 30_000 - Date.now()));
    const shown = await page.evaluate(() => {
      const text = (id) => document.getElementById(id).textContent;
      return { refreshes: Number(text("refreshes")), allowed: Number(text("edge-allowed")), denied: text("edge-denied"), refresh: text("refresh"), expires: text("expires") };
    });
    log("30 s after play:", JSON.stringify(shown));
    assert.ok(shown.refreshes >= 1, "a refresh shows within 30 s");
    assert.ok(shown.allowed >= 3, "the edge's allowed count shows");
    assert.equal(shown.denied, "0", "the edge's denied count shows");
    assert.match(shown.refresh, /^in \d+ s$/, "the next refresh counts down");
    assert.match(shown.expires, /^in \d+ s$/, "the expiry counts down");
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: resolve(shots, `demo-${name}-30s.png`), fullPage: true });

    // Keep playing across two refreshes (refresh at 80% of the lifetime).
    const startedAt = await page.evaluate(() => document.getElementById("player").currentTime);
    await waitFor(page, () => window.demo.refreshes >= 2, "two refreshes", (expect.ttl * 2 + 20) * 1000);
    const fragmentsBefore = await page.evaluate(() => window.demo.fragments);
    await waitFor(page, `window.demo.fragments > ${fragmentsBefore}`, "a segment after the second refresh", 30_000);
    const state = await page.evaluate(() => ({ ...window.demo, time: document.getElementById("player").currentTime, paused: document.getElementById("player").paused }));
    log("after two refreshes:", JSON.stringify({ mints: state.mints, refreshes: state.refreshes, fragments: state.fragments, forbidden: state.forbidden }));
    assert.equal(state.forbidden, 0, "no 403 while the cookies were renewed");
    assert.equal(state.recoveries, 0, "no re-mint after a 403 was needed");
    assert.equal(state.paused, false, "still playing");
    assert.ok(state.time !== startedAt, "playback advanced");
    await page.screenshot({ path: resolve(shots, `demo-${name}.png`), fullPage: true });
    const denied = edgeResponses.filter((r) => r.status !== 200);
    assert.deepEqual(denied, [], "every edge response was 200");
    assert.ok(edgeResponses.some((r) => r.path.endsWith(".m3u8")), "the playlist was fetched");
    assert.ok(edgeResponses.filter((r) => r.path.endsWith(".ts")).length >= 8, "segments were fetched");

    // The edge counted the same requests.
    const stats = await page.evaluate((url) => fetch(url).then((r) => r.json()), urls.edge + "/_cfmint/stats");
    const seen = {};
    for (const r of edgeResponses) seen[r.path] = (seen[r.path] || 0) + 1;
    for (const [path, count] of Object.entries(seen)) {
      const atEdge = stats.paths[path]?.statuses?.["200"] || 0;
      assert.ok(atEdge >= count, `${path}: ${count} fetched by the browser, ${atEdge} counted at the edge`);
    }
    assert.equal(stats.total.denied, 0, "the edge denied nothing while logged in");

    // Cookies lost mid-chapter: the edge answers 403, the page re-mints once
    // and the player carries on.
    const lostAt = await page.evaluate(() => window.demo.fragments);
    await cdp.send("Network.deleteCookies", { name: "CloudFront-Signature", domain: expect.domain, path: "/" });
    const { cookies: remaining } = await cdp.send("Network.getAllCookies");
    assert.ok(!remaining.some((c) => c.name === "CloudFront-Signature"), "the signature cookie is gone");
    await waitFor(page, () => window.demo.recoveries >= 1, "a re-mint after the 403", 30_000);
    await waitFor(page, `window.demo.fragments > ${lostAt + 1}`, "segments after the re-mint", 30_000);
    const recovered = await page.evaluate(() => ({ forbidden: window.demo.forbidden, paused: document.getElementById("player").paused }));
    assert.equal(recovered.forbidden, 0, "the 403 was recovered, not shown");
    assert.equal(recovered.paused, false, "still playing after the re-mint");
    assert.ok(edgeResponses.some((r) => r.status === 403), "the lost cookie did cost one 403");

    // Log out: the player stops, the page forgets the cookies, and the edge
    // refuses the chapter, which the page shows with the edge's reason.
    const before = edgeResponses.length;
    await page.click("#logout");
    await waitFor(page, () => window.demo.loggedOut === true && window.demo.probe !== undefined, "logout");
    await waitFor(page, () => document.getElementById("edge-last").textContent.startsWith("no_credentials for /audiobooks/"), "the edge's last denial on the page", 10_000);
    const out = await page.evaluate(() => {
      const text = (id) => document.getElementById(id).textContent;
      const player = document.getElementById("player");
      return { probe: window.demo.probe, status: text("status"), resource: text("resource"), expires: text("expires"), refresh: text("refresh"), refreshes: text("refreshes"), segments: text("segments"), paused: player.paused, playDisabled: document.getElementById("play").disabled, logoutDisabled: document.getElementById("logout").disabled };
    });
    log("logged out:", JSON.stringify(out));
    assert.equal(out.probe, 403, "the edge refuses the chapter after logout");
    assert.equal(out.status, "logged out: the edge now answers 403 (no_credentials)");
    assert.deepEqual([out.resource, out.expires, out.refresh, out.refreshes, out.segments], ["–", "–", "–", "0", "0"], "the cookie fields are reset");
    assert.equal(out.paused, true, "the player is stopped");
    const settled = edgeResponses.length;
    await page.waitForTimeout(3_000);
    assert.deepEqual(edgeResponses.slice(settled), [], "the stopped player asks the edge for nothing more");
    assert.deepEqual([out.playDisabled, out.logoutDisabled], [false, true], "play again, not log out again");
    const after = edgeResponses.slice(before);
    assert.ok(after.some((r) => r.status === 403), "a 403 from the edge after logout");
    const { cookies: left } = await cdp.send("Network.getAllCookies");
    assert.ok(!left.some((c) => c.name.startsWith("CloudFront-")), "logout cleared the CloudFront cookies");
    await page.screenshot({ path: resolve(shots, `demo-${name}-logged-out.png`), fullPage: true });
    log(`${name}: ok (${edgeResponses.length} edge responses, screenshots in target/browser)`);
  } finally {
    await browser.close();
    child.kill("SIGTERM");
  }
}

// The demo's setup: page, mint service and edge on localhost, host-only cookies.
// The default lifetime (30 s): the page refreshes within its first 30 s.
await run("localhost", [], { domain: "localhost", ttl: 30 });
// Production-like: three HTTPS origins of one site, cookies for the parent domain.
await run("https", ["--tls-domain", "cfmint.test", "--ttl", "20s"], {
  domain: ".cfmint.test",
  ttl: 20,
  browserArgs: ["--host-resolver-rules=MAP *.cfmint.test 127.0.0.1", "--ignore-certificate-errors"],
});

// The cookie-less player switch: no CloudFront cookie is set, and every
// request hls.js makes to the edge carries the signed query string, across
// a refresh (20 s lifetime, refreshed at 16 s).
async function cookieless() {
  log("== cookie-less player");
  const { child, urls } = await startDemo(["--ttl", "20s"]);
  const browser = await launchPlain();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const edgeResponses = [];
    page.on("response", (response) => {
      if (response.url().startsWith(urls.edge + "/audiobooks/")) {
        edgeResponses.push({ url: response.url(), status: response.status() });
      }
    });
    await page.goto(urls.page + "/");
    await waitFor(page, () => window.demo.ready === true, "the page to be ready");
    await page.check("#cookieless");
    await page.click("#play");
    await waitFor(page, () => window.demo.refreshes >= 1, "a refresh", 60_000);
    const fragments = await page.evaluate(() => window.demo.fragments);
    await waitFor(page, `window.demo.fragments > ${fragments}`, "a segment after the refresh", 30_000);
    const state = await page.evaluate(() => window.demo);
    const cookies = (await context.cookies()).filter((c) => c.name.startsWith("CloudFront-"));
    log("cookie-less:", JSON.stringify({ mints: state.mints, fragments: state.fragments, edge: edgeResponses.length }));
    assert.equal(state.mode, "query");
    assert.equal(cookies.length, 0, "no CloudFront cookie in the browser");
    assert.equal(state.forbidden, 0, "no 403");
    assert.ok(edgeResponses.length >= 3, "the player fetched from the edge");
    for (const response of edgeResponses) {
      assert.equal(response.status, 200, response.url);
      assert.match(response.url, /[?&]Policy=[^&]+&Signature=[^&]+&Key-Pair-Id=/, "signed in the query");
    }
    assert.ok(state.log.some((line) => line.includes("signed query string")), "the page says what it minted");
  } finally {
    await browser.close();
    child.kill("SIGTERM");
  }
}

await cookieless();

// Debian's headless Chromium with autoplay, for the runs that need no more.
function launchPlain() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
  });
}

// How the page reads on a laptop and on a phone: buttons, labels, headings
// and the delivery badge on one line each, the arrows on their two, no
// horizontal scrolling; in cookie-less mode the panel and the badge say so
// while playing, and a denial from before play is not shown as the last.
async function layout() {
  log("== layout at 1280 and 390 px");
  const { child, urls } = await startDemo(["--ttl", "20s"]);
  const browser = await launchPlain();
  // A denial at the edge before the page opens: it is not "the last denial".
  const stale = await fetch(urls.edge + "/audiobooks/", { redirect: "manual" });
  assert.equal(stale.status, 403, "a request without cookies is refused");
  const measure = () => {
    const lines = (element) => {
      const range = document.createRange();
      range.selectNodeContents(element);
      return new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size;
    };
    const visible = (element) => element.getClientRects().length > 0;
    const wrapped = [];
    const one = [...document.querySelectorAll("button, dt, h2, .mode, .role b, .role code")];
    for (const element of one.filter(visible)) {
      if (lines(element) !== 1) wrapped.push(`${element.outerHTML.slice(0, 60)}: ${lines(element)} lines`);
    }
    for (const element of [...document.querySelectorAll(".arrow")].filter(visible)) {
      if (lines(element) !== 2) wrapped.push(`${element.textContent}: ${lines(element)} lines`);
    }
    const text = (id) => document.getElementById(id).textContent;
    return {
      wrapped,
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      arrows: [...document.querySelectorAll(".arrow")].filter(visible).length,
      mode: text("mode"),
      heading: text("credentials-heading"),
      last: text("edge-last"),
      switchDisabled: document.getElementById("cookieless").disabled,
    };
  };
  try {
    for (const [width, height, arrows] of [[1280, 900, 2], [390, 844, 0]]) {
      const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1 });
      const page = await context.newPage();
      await page.goto(urls.page + "/");
      await waitFor(page, () => window.demo.ready === true && window.demo.edge !== null, "the page to be ready");
      const opened = await page.evaluate(measure);
      log(`${width} px:`, JSON.stringify(opened));
      assert.deepEqual(opened.wrapped, [], `${width} px: nothing wraps`);
      assert.ok(opened.overflow <= 0, `${width} px: no horizontal scrolling (${opened.overflow} px over)`);
      assert.equal(opened.arrows, arrows, `${width} px: arrows shown`);
      assert.equal(opened.mode, "Delivery: cookies");
      assert.equal(opened.heading, "Your cookies");
      assert.equal(opened.last, "none since this page opened", "a denial from before the page is not shown");
      await page.screenshot({ path: resolve(shots, `demo-layout-${width}.png`), fullPage: true });

      await page.check("#cookieless");
      await page.click("#play");
      await waitFor(page, () => window.demo.fragments >= 1, "a segment, cookie-less");
      const playing = await page.evaluate(measure);
      log(`${width} px, cookie-less and playing:`, JSON.stringify(playing));
      assert.deepEqual(playing.wrapped, [], `${width} px: nothing wraps while playing`);
      assert.ok(playing.overflow <= 0, `${width} px: no horizontal scrolling while playing`);
      assert.equal(playing.mode, "Delivery: signed query string", "the delivery is on the page while playing");
      assert.equal(playing.heading, "Your signed query string");
      assert.equal(playing.switchDisabled, true, "the switch is fixed while playing");
      assert.equal(playing.last, "none since you pressed play");
      await page.screenshot({ path: resolve(shots, `demo-layout-${width}-cookieless.png`), fullPage: true });
      await context.close();
    }
  } finally {
    await browser.close();
    child.kill("SIGTERM");
  }
}

await layout();

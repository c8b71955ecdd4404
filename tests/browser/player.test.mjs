// cfmint.js in Debian's headless Chromium: a device clock minutes off does
// not change when the player re-mints, and only a CDN's 403 re-mints.
//
// `cfmint demo` with 1-minute cookies, two pages at once: one whose clock is
// 5 minutes fast, one 30 s slow (Playwright's clock). Each plays across three
// refreshes with no 403 and no more mints than refreshes plus one. Then, with
// /mint answered by the test: backoff after failures, a 401 ending the
// refreshes, and the per-minute bound on mints.
//
//   node player.test.mjs          (CFMINT_BIN: the cfmint binary to run)

import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { startDemo, waitFor } from "./harness.mjs";

const TTL = 60;

function log(...args) {
  console.log("[player]", ...args);
}

/** A page whose clock is `skew` ms off, playing until three refreshes. */
async function playSkewed(browser, urls, name, skew) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const denied = [];
  page.on("response", (response) => {
    if (response.url().startsWith(urls.edge) && response.status() === 403) denied.push(response.url());
  });
  page.on("pageerror", (error) => log(`${name}: page error:`, error.message));
  // Installed before the page loads: Date, timers and performance are fake
  // from the start, running at the real rate from a skewed start time.
  await page.clock.install({ time: Date.now() + skew });
  await page.goto(urls.page + "/");
  await waitFor(page, () => window.demo.ready === true, "the page", 60_000);
  const offBy = await page.evaluate(() => Date.now());
  log(`${name}: page clock off by ${Math.round((offBy - Date.now()) / 1000)} s`);
  await page.click("#play");
  await waitFor(page, () => window.demo.mints >= 1, "the first mint", 60_000);
  const firstMint = Date.now();
  await waitFor(page, () => window.demo.fragments >= 2, "the first segments", 60_000);
  await waitFor(page, () => window.demo.refreshes >= 3, "three refreshes", (TTL * 4 + 30) * 1000);
  const fragments = await page.evaluate(() => window.demo.fragments);
  await waitFor(page, `window.demo.fragments > ${fragments}`, "a segment after the third refresh", 30_000);
  const state = await page.evaluate(() => ({ ...window.demo, paused: document.getElementById("player").paused }));
  // Refreshes due in the time that passed (at 80 % of each minute), from
  // the test's own clock, plus the first mint (and 2 s for polling).
  const elapsed = Date.now() - firstMint;
  const due = Math.floor((elapsed + 2000) / (TTL * 800));
  log(`${name}:`, JSON.stringify({ mints: state.mints, due, seconds: Math.round(elapsed / 1000), fragments: state.fragments, forbidden: state.forbidden }));
  assert.equal(state.forbidden, 0, `${name}: no 403 shown`);
  assert.deepEqual(denied, [], `${name}: the edge denied nothing`);
  assert.equal(state.recoveries, 0, `${name}: no re-mint after a 403`);
  assert.ok(state.mints <= due + 1, `${name}: ${state.mints} mints in ${elapsed} ms (${due} refreshes due)`);
  assert.equal(state.paused, false, `${name}: still playing`);
  return page;
}

/** recover() in the page: an origin's 403 mints nothing; the edge's does. */
async function recoverOnlyForTheEdge(page, urls) {
  const result = await page.evaluate(async (edge) => {
    const session = new Cfmint({ api: window.demoConfig ? window.demoConfig.api : "", path: "/" });
    const edgeDenial = await fetch(edge + "/audiobooks/none.m3u8"); // no cookies for it: the edge says 403
    const origin = new Response("not yours", { status: 403, headers: { "content-type": "text/plain" } });
    const cloudfront = new Response("<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>", { status: 403 });
    const viaHeader = new Response("", { status: 403, headers: { "x-cache": "Error from cloudfront" } });
    return {
      edgeStatus: edgeDenial.status,
      edge: Cfmint.isEdgeDenial(edgeDenial),
      origin: Cfmint.isEdgeDenial(origin, await origin.clone().text()),
      cloudfront: Cfmint.isEdgeDenial(cloudfront, await cloudfront.clone().text()),
      viaHeader: Cfmint.isEdgeDenial(viaHeader, ""),
      notFound: Cfmint.isEdgeDenial(new Response("", { status: 404, headers: { "x-cfmint-denial": "x" } })),
      recovered: await session.recover(origin, "not yours"),
      mintsBefore: window.demo.mints,
    };
  }, urls.edge);
  assert.equal(result.edgeStatus, 403, "the edge refuses a request without cookies");
  assert.equal(result.edge, true, "the local edge's 403 (x-cfmint-denial, exposed to the page) is the CDN's");
  assert.equal(result.origin, false, "an origin's 403 is not");
  assert.equal(result.cloudfront, true, "CloudFront's XML error is");
  assert.equal(result.viaHeader, true, "x-cache: Error from cloudfront is");
  assert.equal(result.notFound, false, "only a 403 counts");
  assert.equal(result.recovered, null, "recover() leaves an origin's 403 alone");
}

/**
 * Failed mints back off (1 s doubling, with jitter), a 401 stops the
 * refreshes, and however eagerly the server asks for refreshes there are at
 * most maxMintsPerMinute mints (6): counted at /mint, answered by the test.
 */
async function backoffAndBudget(browser, urls) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(urls.page + "/");
  await waitFor(page, () => window.demo.ready === true, "the page", 60_000);
  let answer = { status: 503, body: { error: "signer_unavailable", message: "retry" } };
  let calls = 0;
  await page.route(urls.api + "/mint", (route) => {
    calls += 1;
    route.fulfill({ status: answer.status, contentType: "application/json", body: JSON.stringify(answer.body) });
  });
  const run = async (body, seconds) => {
    answer = body;
    calls = 0;
    await page.evaluate((api) => {
      window.probe = new Cfmint({ api, path: "/audiobooks/", onError() {} });
      window.probe.start().catch(() => {});
    }, urls.api);
    await page.waitForTimeout(seconds * 1000);
    await page.evaluate(() => window.probe.stop());
    return calls;
  };
  // 503s: attempts at 0, then after 0.5-1.5 s, 1-3 s, 2-6 s, 4-12 s more.
  const failing = await run({ status: 503, body: { error: "signer_unavailable", message: "retry" } }, 10);
  assert.ok(failing >= 3 && failing <= 5, `backoff: ${failing} attempts in 10 s`);
  const loggedOut = await run({ status: 401, body: { error: "unauthenticated", message: "log in" } }, 4);
  assert.equal(loggedOut, 1, "a 401 stops the refreshes");
  const eager = { resource: "x", expires_in: 60, refresh_in: 0, expires_at: 0, refresh_at: 0 };
  const budget = await run({ status: 200, body: eager }, 10);
  assert.equal(budget, 6, `at most 6 mints a minute, whatever refresh_in says (${budget})`);
  log(`backoff: ${failing} attempts in 10 s; 401: ${loggedOut}; eager server: ${budget} mints in 10 s`);
  await context.close();
}

const { child, urls } = await startDemo(["--ttl", `${TTL}s`]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const [fast] = await Promise.all([
    playSkewed(browser, urls, "5 min fast", 5 * 60_000),
    playSkewed(browser, urls, "30 s slow", -30_000),
  ]);
  await recoverOnlyForTheEdge(fast, urls);
  await backoffAndBudget(browser, urls);
  log("ok");
} finally {
  await browser.close();
  child.kill("SIGTERM");
}

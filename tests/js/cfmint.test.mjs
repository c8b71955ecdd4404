// cfmint.js (demo/web/cfmint.js, served at /cfmint.js) loaded as a page
// loads it, in a context of its own with fetch and XMLHttpRequest stand-ins
// that record what the page would send. Run with `node --test tests/js/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";

const source = readFileSync(new URL("../../demo/web/cfmint.js", import.meta.url), "utf8");

/** A page with cfmint.js, whose fetch answers `answer(url, init)`. */
function page(answer) {
  const requests = [];
  const window = {
    performance: { now: () => 0 },
    location: { assign() {} },
  };
  window.fetch = async (url, init) => {
    requests.push({ url, init });
    const { status = 200, body = {} } = answer(url, init) || {};
    return {
      status,
      ok: status < 300,
      headers: { get: () => null },
      json: async () => body,
    };
  };
  const context = vm.createContext({
    window,
    fetch: (...args) => window.fetch(...args),
    setTimeout: () => 0,
    clearTimeout: () => {},
    Promise,
    Math,
    Number,
    Object,
    Error,
  });
  vm.runInContext(source, context);
  return { Cfmint: window.Cfmint, requests };
}

const MINTED = {
  resource: "https://cdn.test/books/1/*",
  query: "Policy=p&Signature=s&Key-Pair-Id=K",
  refresh_in: 600,
};

/** An XMLHttpRequest as far as hls.js and cfmint.js use it. */
function xhr() {
  return {
    readyState: 0,
    opened: [],
    headers: {},
    withCredentials: false,
    open(method, url) {
      this.opened.push(url);
      this.readyState = 1;
      this.headers = {}; // open() drops headers set before it
    },
    setRequestHeader(name, value) {
      this.headers[name] = value;
    },
  };
}

test("hlsConfig keeps the caller's xhrSetup and what it sets", async () => {
  const { Cfmint } = page(() => ({ body: MINTED }));
  const session = new Cfmint({ api: "https://auth.test", deliver: "query" });
  await session.start();
  const seen = [];
  const config = session.hlsConfig({
    maxBufferLength: 30,
    xhrSetup(request, url) {
      seen.push(url);
      request.withCredentials = true;
      request.setRequestHeader("X-App", "1");
    },
  });
  assert.equal(config.maxBufferLength, 30);
  const request = xhr();
  config.xhrSetup(request, "https://cdn.test/books/1/seg-1.ts");
  const signed = "https://cdn.test/books/1/seg-1.ts?" + MINTED.query;
  assert.deepEqual(request.opened, [signed]);
  assert.deepEqual(seen, [signed], "the caller's setup sees the signed URL");
  assert.equal(request.withCredentials, true);
  assert.equal(request.headers["X-App"], "1");

  // A URL outside the mint is left to hls.js, and still to the caller.
  const outside = xhr();
  config.xhrSetup(outside, "https://cdn.test/other/x.ts");
  assert.deepEqual(outside.opened, []);
  assert.deepEqual(seen.at(-1), "https://cdn.test/other/x.ts");
  assert.equal(outside.withCredentials, true);
});

test("a renewed bearer token is sent from the next mint on", async () => {
  const { Cfmint, requests } = page(() => ({ body: MINTED }));
  const session = new Cfmint({ api: "https://auth.test", token: "first" });
  await session.start();
  session.setToken("second");
  await session.mint();
  let current = "third";
  session.setToken(async () => current);
  await session.mint();
  current = "fourth";
  await session.mint();
  const sent = requests.map((r) => r.init.headers.Authorization);
  assert.deepEqual(sent, ["Bearer first", "Bearer second", "Bearer third", "Bearer fourth"]);
});

test("a token given as a function at construction is asked each time", async () => {
  const { Cfmint, requests } = page(() => ({ body: MINTED }));
  let n = 0;
  const session = new Cfmint({ api: "https://auth.test", token: () => "jwt-" + ++n });
  await session.start();
  await session.mint();
  assert.deepEqual(
    requests.map((r) => r.init.headers.Authorization),
    ["Bearer jwt-1", "Bearer jwt-2"],
  );
});

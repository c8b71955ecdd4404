// The demo page: log in, mint, play through the edge, renew, log out; what
// the edge allowed and refused, live. window.demo holds what happened, for
// people (and the browser test) to read.
"use strict";

const demo = (window.demo = { mints: 0, refreshes: 0, fragments: 0, forbidden: 0, recoveries: 0, log: [], edge: null });
const $ = (id) => document.getElementById(id);

function log(text) {
  demo.log.push(text);
  const item = document.createElement("li");
  item.textContent = new Date().toLocaleTimeString() + "  " + text;
  $("log").prepend(item);
}

function status(text, kind) {
  $("status").textContent = text;
  $("status").className = kind || "";
}

// Deadlines on the monotonic clock (performance.now()), from the seconds the
// mint answer counts from itself: a wrong device clock changes nothing.
const deadlines = { expires: null, refresh: null };

function countdown(id, deadline) {
  if (deadline === null) {
    $(id).textContent = "–";
    return;
  }
  const left = Math.max(0, Math.round((deadline - performance.now()) / 1000));
  $(id).textContent = "in " + left + " s";
}

function tick() {
  countdown("expires", deadlines.expires);
  countdown("refresh", deadlines.refresh);
}

// The edge's denial count when the page opened, then when play was last
// pressed: the last denial shows only when it is newer than that.
const denials = { since: null, what: "this page opened" };

/** The edge's own counts (GET /_cfmint/stats), shown live. */
async function pollEdge(edge) {
  try {
    const stats = await (await fetch(edge + "/_cfmint/stats", { cache: "no-store" })).json();
    demo.edge = { allowed: stats.total.allowed, denied: stats.total.denied, last: stats.last_denial };
    if (denials.since === null) denials.since = stats.total.denied;
    $("edge-allowed").textContent = String(stats.total.allowed);
    $("edge-denied").textContent = String(stats.total.denied);
    $("edge-denied").className = stats.total.denied > 0 ? "some" : "";
    const last = stats.total.denied > denials.since ? stats.last_denial : null;
    $("edge-last").textContent = last ? last.reason + " for " + last.path : "none since " + denials.what;
  } catch (error) {
    $("edge-last").textContent = "edge unreachable: " + error.message;
  }
}

/** Which delivery the player uses, on the page whatever the switch shows. */
function showMode(mode) {
  const query = mode === "query";
  $("mode").textContent = "Delivery: " + (query ? "signed query string" : "cookies");
  $("credentials-heading").textContent = query ? "Your signed query string" : "Your cookies";
  $("arrow-edge").textContent = query ? "player + signed query" : "player + cookies";
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error("cannot load " + src));
    document.head.append(script);
  });
}

async function main() {
  const config = await (await fetch("/demo.json")).json();
  showMode($("cookieless").checked ? "query" : "cookies");
  $("role-page").textContent = location.origin;
  $("role-api").textContent = config.api;
  $("role-edge").textContent = config.edge;
  setInterval(tick, 250);
  setInterval(() => pollEdge(config.edge), 1000);
  pollEdge(config.edge);
  await loadScript(config.api + "/cfmint.js");
  const audio = $("player");
  let hls = null;
  let retried = false;

  const session = new Cfmint({
    api: config.api,
    path: config.path,
    onMint(minted) {
      demo.mints += 1;
      if (demo.mints > 1) demo.refreshes += 1;
      $("resource").textContent = minted.resource;
      deadlines.expires = performance.now() + minted.expires_in * 1000;
      deadlines.refresh = performance.now() + minted.refresh_in * 1000;
      tick();
      $("refreshes").textContent = String(demo.refreshes);
      const what = minted.query ? "a signed query string" : "cookies";
      log((demo.mints > 1 ? "refreshed " : "minted ") + what + " for " + minted.expires_in + " s");
    },
    onError(error) {
      log("mint failed: " + error.message);
    },
  });

  function denied(where) {
    demo.forbidden += 1;
    status("403 from the edge: access denied", "denied");
    $("error").textContent = "The edge refused " + where + " (403). Log in again to keep listening.";
    log("403 from the edge for " + where);
  }

  // A 403 from the edge: re-mint once and retry; a second 403 is final.
  // `evidence` (hls.js's error data) lets cfmint.js tell the edge's denial
  // from an origin's own 403.
  async function onForbidden(where, retry, evidence) {
    if (retried) {
      denied(where);
      return;
    }
    retried = true;
    demo.recoveries += 1;
    log("403 for " + where + ": re-minting once");
    try {
      const minted = await session.recover(evidence);
      if (minted === null) {
        denied(where);
        return;
      }
      retry();
    } catch (error) {
      denied(where);
    }
  }

  function play() {
    const url = config.edge + config.playlist;
    if (hls) hls.destroy();
    retried = false;
    const buffers = { maxBufferLength: 4, maxMaxBufferLength: 6, backBufferLength: 0 };
    if (window.Hls && Hls.isSupported()) {
      // Cookie-less: every request carries the signed query string instead.
      hls = new Hls(
        demo.mode === "query"
          ? session.hlsConfig(buffers)
          : Object.assign(buffers, {
              xhrSetup(xhr) {
                xhr.withCredentials = true;
              },
            }),
      );
      hls.on(Hls.Events.FRAG_LOADED, (_, data) => {
        retried = false;
        demo.fragments += 1;
        $("segments").textContent = String(demo.fragments);
        if (demo.forbidden === 0) status("playing", "playing");
        if (demo.fragments === 1) log("first segment " + data.frag.relurl);
      });
      hls.on(Hls.Events.ERROR, (_, data) => {
        const code = data.response && data.response.code;
        if (code === 403) {
          hls.stopLoad();
          onForbidden(
            data.frag ? data.frag.relurl : "the playlist",
            () => hls.startLoad(audio.currentTime),
            data,
          );
        } else if (data.fatal) {
          log("player error: " + data.details);
        }
      });
      hls.loadSource(url);
      hls.attachMedia(audio);
    } else {
      // Native HLS (Safari, recent Chrome): the browser sends the cookies
      // itself; cookie-less, it plays the playlist cfmint signs.
      audio.src = (demo.mode === "query" && session.playlistUrl(config.playlist)) || url;
      audio.addEventListener("error", () => onForbidden("the stream", () => audio.load()));
    }
    audio.play().catch((error) => log("autoplay: " + error.message));
  }

  $("cookieless").addEventListener("change", () => showMode($("cookieless").checked ? "query" : "cookies"));

  $("play").addEventListener("click", async () => {
    $("play").disabled = true;
    $("error").textContent = "";
    demo.forbidden = 0;
    demo.loggedOut = false;
    denials.since = demo.edge ? demo.edge.denied : null;
    denials.what = "you pressed play";
    pollEdge(config.edge);
    demo.mode = $("cookieless").checked ? "query" : "cookies";
    showMode(demo.mode);
    session.deliver = demo.mode === "query" ? "query" : undefined;
    $("cookieless").disabled = true;
    try {
      await session.login(config.username, config.password);
      log("logged in as " + config.username);
      await session.start();
      status("starting", "");
      $("logout").disabled = false;
      play();
    } catch (error) {
      $("error").textContent = error.message;
      $("play").disabled = false;
    }
  });

  // Logged out: the player stops, the page forgets the cookies, and one
  // request to the edge shows that it now refuses the chapter.
  function reset() {
    if (hls) {
      hls.destroy();
      hls = null;
    }
    audio.pause();
    audio.removeAttribute("src");
    audio.load();
    deadlines.expires = deadlines.refresh = null;
    tick();
    demo.mints = demo.refreshes = demo.fragments = 0;
    for (const [id, text] of [["resource", "–"], ["refreshes", "0"], ["segments", "0"]]) {
      $(id).textContent = text;
    }
    $("error").textContent = "";
  }

  $("logout").addEventListener("click", async () => {
    $("logout").disabled = true;
    await session.logout();
    reset();
    demo.loggedOut = true;
    log("logged out: the cookies are cleared");
    const probe = await fetch(config.edge + config.playlist, { credentials: "include", cache: "no-store" });
    demo.probe = probe.status;
    const reason = probe.headers.get("x-cfmint-denial");
    status("logged out: the edge now answers " + probe.status + (reason ? " (" + reason + ")" : ""), probe.status === 403 ? "denied" : "");
    log("the edge answered " + probe.status + " for the chapter after logout");
    pollEdge(config.edge);
    $("play").disabled = false;
    $("cookieless").disabled = false;
  });
}

main()
  .then(() => {
    $("play").disabled = false;
    demo.ready = true;
  })
  .catch((error) => {
    $("error").textContent = error.message;
  });

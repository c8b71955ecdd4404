// The demo page: log in, mint, play through the edge, renew, log out.
// window.demo holds what happened, for people (and the browser test) to read.
"use strict";

const demo = (window.demo = { mints: 0, refreshes: 0, fragments: 0, forbidden: 0, recoveries: 0, log: [] });
const $ = (id) => document.getElementById(id);
const time = (epoch) => new Date(epoch * 1000).toLocaleTimeString();

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
      $("expires").textContent = time(minted.expires_at);
      $("refresh").textContent = time(minted.refresh_at);
      $("refreshes").textContent = String(demo.refreshes);
      log((demo.mints > 1 ? "refreshed" : "minted") + " cookies until " + time(minted.expires_at));
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
    if (window.Hls && Hls.isSupported()) {
      hls = new Hls({
        maxBufferLength: 4,
        maxMaxBufferLength: 6,
        backBufferLength: 0,
        xhrSetup(xhr) {
          xhr.withCredentials = true;
        },
      });
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
      // Native HLS (Safari, recent Chrome): the browser sends the cookies itself.
      audio.src = url;
      audio.addEventListener("error", () => onForbidden("the stream", () => audio.load()));
    }
    audio.play().catch((error) => log("autoplay: " + error.message));
  }

  $("play").addEventListener("click", async () => {
    $("play").disabled = true;
    $("error").textContent = "";
    demo.forbidden = 0;
    demo.loggedOut = false;
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

  $("logout").addEventListener("click", async () => {
    $("logout").disabled = true;
    await session.logout();
    demo.loggedOut = true;
    log("logged out: the cookies are cleared");
    status("logged out (the player keeps asking the edge)", "");
    $("play").disabled = false;
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

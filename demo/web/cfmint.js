/*
 * cfmint.js: keeps CloudFront signed cookies fresh for a web player.
 * Served by cfmint at GET /cfmint.js; copy it into your app as you like.
 *
 *   const session = new Cfmint({
 *     api: "https://auth.example.com",   // where cfmint serve runs
 *     path: "/audiobooks/42/",            // what to mint (optional: the server's default)
 *     match: "prefix",                    // "exact" | "folder" | "prefix" (optional)
 *     token: undefined,                   // a bearer JWT instead of a session (optional): a
 *                                         // string, or a function (async or not) answering the
 *                                         // current one, asked before every request
 *     deliver: "cookies",                 // "query": a signed query string instead of cookies,
 *                                         // for players that cannot carry them (optional)
 *     maxMintsPerMinute: 6,               // never more, whatever happens (optional)
 *     onMint: (minted) => {},             // {resource, expires_in, refresh_in, key_pair_id, policy, ...}
 *     onError: (error) => {},             // error.status: 401 logged out, 403 not granted, ...
 *   });
 *   await session.login("alice", "password");  // unless the app already has a session or a token
 *   session.loginWithProvider(location.href);  // or: through the OpenID provider ([auth.oidc])
 *   await session.start();                      // mints now, then again refresh_in seconds later
 *   // A request got 403: hand over what came back (a fetch Response, an
 *   // XMLHttpRequest, or hls.js's error data). Only a CDN denial re-mints;
 *   // an origin's own 403 resolves null and is yours to handle.
 *   const minted = await session.recover(response);
 *   await session.logout();                     // ends the session, clears the cookies
 *                                               // (and the provider's, with auth.oidc.end_session)
 *   session.setToken(renewedJwt);               // the app renewed its JWT: the next mint uses it
 *
 * A player that cannot carry cookies (a CDN on another site with third-party
 * cookies blocked, a Cast receiver, a native app) takes the query instead:
 *
 *   const session = new Cfmint({ api, path: "/audiobooks/42/", deliver: "query" });
 *   await session.start();
 *   const hls = new Hls(session.hlsConfig());   // every request under the path gets the query
 *   session.signUrl(url);                       // the same for any other loader
 *   session.playlistUrl("/audiobooks/42/master.m3u8");  // a signed playlist through cfmint
 *                                               // ([playlists]), for players you cannot touch
 *
 * Refreshes are scheduled from refresh_in (seconds from the response) on the
 * browser's monotonic timers, so a device clock that is minutes off changes
 * nothing. A failed mint is retried with exponential backoff and jitter
 * (Retry-After honoured); 401 and 403 stop the refreshes and go to onError.
 *
 * Every call uses fetch with credentials: "include", so the browser stores the
 * HttpOnly cookies cfmint sets and sends them to the CDN; the page never sees
 * them. The player must send credentials too (hls.js: xhrSetup sets
 * withCredentials = true; native players send cookies by themselves).
 */
(function (global) {
  "use strict";

  const MINUTE = 60000;

  /** A header of a fetch Response, an XMLHttpRequest, or a plain object. */
  function header(source, name) {
    if (!source) return null;
    try {
      if (source.headers && typeof source.headers.get === "function") return source.headers.get(name);
      if (typeof source.getResponseHeader === "function") return source.getResponseHeader(name);
      if (source.headers) return source.headers[name] || null;
    } catch (_) {
      // A header the browser does not expose reads as absent.
    }
    return null;
  }

  class Cfmint {
    constructor(options) {
      this.api = options.api.replace(/\/$/, "");
      this.path = options.path;
      this.match = options.match;
      this.token = options.token;
      this.deliver = options.deliver;
      this.maxMintsPerMinute = options.maxMintsPerMinute || 6;
      this.onMint = options.onMint || function () {};
      this.onError = options.onError || function () {};
      this.timer = null;
      this.recovering = null;
      this.current = null;
      this.failures = 0;
      this.mintedAt = []; // performance.now() of recent mints
    }

    /**
     * Whether a 403 came from the CDN rather than the origin: CloudFront's
     * XML error body or its `x-cache: Error from cloudfront`, or the local
     * edge's `x-cfmint-denial`. Takes a fetch Response (with its text, if
     * read, as `body`), an XMLHttpRequest, or hls.js error data.
     */
    static isEdgeDenial(evidence, body) {
      if (!evidence) return false;
      // hls.js: {response: {code}, networkDetails: XMLHttpRequest | Response}
      const details = evidence.networkDetails;
      const status =
        evidence.status !== undefined ? evidence.status : evidence.response && evidence.response.code;
      if (status !== 403) return false;
      const source = details || evidence;
      if (header(source, "x-cfmint-denial")) return true;
      if (/error from cloudfront/i.test(header(source, "x-cache") || "")) return true;
      let text = body;
      if (text === undefined) {
        try {
          text = typeof source.responseText === "string" ? source.responseText : "";
        } catch (_) {
          text = ""; // responseText of a binary XMLHttpRequest
        }
      }
      return /<Error>\s*<Code>[A-Za-z]+<\/Code>/.test(text || "");
    }

    /** The bearer token to send now: the string given, or what the function answers. */
    async currentToken() {
      return typeof this.token === "function" ? await this.token() : this.token;
    }

    /**
     * Replaces the bearer token (a string, or a function answering the
     * current one); the next mint, refresh or recovery sends it.
     */
    setToken(token) {
      this.token = token;
    }

    async request(route, body) {
      const headers = {};
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const token = await this.currentToken();
      if (token) headers["Authorization"] = "Bearer " + token;
      const response = await fetch(this.api + route, {
        method: "POST",
        credentials: "include",
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (response.status === 204) return null;
      let answer = {};
      try {
        answer = await response.json();
      } catch (_) {
        answer = {};
      }
      if (!response.ok) {
        const error = new Error(answer.message || "HTTP " + response.status);
        error.status = response.status;
        error.code = answer.error;
        const retryAfter = Number(response.headers.get("Retry-After"));
        if (retryAfter > 0) error.retryAfter = retryAfter;
        throw error;
      }
      return answer;
    }

    /** Starts a session with a username and password. */
    login(username, password) {
      return this.request("/login", { username: username, password: password });
    }

    /**
     * Sends the browser to the OpenID provider through cfmint; it comes back
     * to `returnTo` (which must be on auth.oidc.return_urls) logged in.
     */
    loginWithProvider(returnTo) {
      const query = returnTo ? "?return_to=" + encodeURIComponent(returnTo) : "";
      global.location.assign(this.api + "/login/oidc" + query);
    }

    /** How long until one more mint keeps within maxMintsPerMinute. */
    budgetWait() {
      const now = global.performance.now();
      this.mintedAt = this.mintedAt.filter((at) => now - at < MINUTE);
      if (this.mintedAt.length < this.maxMintsPerMinute) return 0;
      return MINUTE - (now - this.mintedAt[0]);
    }

    /** Mints now (or as soon as the budget allows) and schedules the next. */
    async mint() {
      const wait = this.budgetWait();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.mintedAt.push(global.performance.now());
      const body = {};
      if (this.path) body.path = this.path;
      if (this.match) body.match = this.match;
      if (this.deliver) body.deliver = this.deliver;
      let minted;
      try {
        minted = await this.request("/mint", body);
      } catch (error) {
        this.retryLater(error);
        throw error;
      }
      this.failures = 0;
      this.current = minted;
      this.schedule(minted.refresh_in * 1000);
      this.onMint(minted);
      return minted;
    }

    schedule(delay) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.mint().catch((error) => this.onError(error));
      }, Math.max(1000, delay));
    }

    /**
     * After a failed mint: 401 (logged out) and 403 (not granted) stop the
     * refreshes; anything else is retried, 1 s doubling to 60 s, ±50 %.
     */
    retryLater(error) {
      if (error.status === 401 || error.status === 403 || error.status === 400) {
        this.stop();
        return;
      }
      this.failures += 1;
      const backoff = Math.min(60000, 1000 * 2 ** (this.failures - 1));
      const jittered = backoff * (0.5 + Math.random());
      this.schedule(Math.max(jittered, (error.retryAfter || 0) * 1000));
    }

    /** Mints and keeps the cookies fresh until stop() or logout(). */
    start() {
      return this.mint();
    }

    /**
     * After a 403: re-mints once (shared by concurrent callers) when the CDN
     * denied the request, and resolves with the new cookies' answer; an
     * origin's own 403 resolves null and mints nothing. Without `evidence`
     * the caller vouches that the CDN denied it.
     */
    recover(evidence, body) {
      if (evidence !== undefined && !Cfmint.isEdgeDenial(evidence, body)) {
        return Promise.resolve(null);
      }
      if (!this.recovering) {
        this.recovering = this.mint().finally(() => {
          this.recovering = null;
        });
      }
      return this.recovering;
    }

    /**
     * `url` with the current signed query string appended, when the last
     * mint covers it (deliver "query" or "both"); otherwise `url` unchanged.
     */
    signUrl(url) {
      const minted = this.current;
      if (!minted || !minted.query) return url;
      const resource = minted.resource;
      const covered = resource.endsWith("*") ? url.startsWith(resource.slice(0, -1)) : url === resource;
      if (!covered) return url;
      return url + (url.includes("?") ? "&" : "?") + minted.query;
    }

    /**
     * hls.js options that sign every request it makes under the minted
     * path, with the query current at that moment (refreshes included).
     * An `xhrSetup` of the caller's own still runs, after the request is
     * opened on the signed URL and with that URL, so what it sets
     * (withCredentials, headers) stays.
     */
    hlsConfig(options) {
      const session = this;
      const own = options && options.xhrSetup;
      return Object.assign({}, options, {
        xhrSetup(xhr, url) {
          const signed = session.signUrl(url);
          // hls.js opens the request itself unless xhrSetup already did.
          if (signed !== url && !xhr.readyState) xhr.open("GET", signed, true);
          if (own) return own.call(this, xhr, signed);
          return undefined;
        },
      });
    }

    /**
     * The URL of a playlist rewritten by cfmint (GET /playlists/...), with
     * the token from the last mint: for players that cannot sign their own
     * requests. Null unless the server has [playlists] and the mint asked
     * for the query.
     */
    playlistUrl(path) {
      const minted = this.current;
      if (!minted || !minted.playlist_token) return null;
      return this.api + "/playlists" + path + "?token=" + minted.playlist_token;
    }

    stop() {
      clearTimeout(this.timer);
      this.timer = null;
    }

    /**
     * Ends the session; cfmint clears every CloudFront cookie. After an
     * OpenID login with auth.oidc.end_session, the browser then goes on to
     * the provider to end its session too.
     */
    async logout() {
      this.stop();
      const answer = await this.request("/logout");
      this.current = null;
      if (answer && answer.end_session_url) global.location.assign(answer.end_session_url);
    }
  }

  global.Cfmint = Cfmint;
})(window);

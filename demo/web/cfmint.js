/*
 * cfmint.js: keeps CloudFront signed cookies fresh for a web player.
 * Served by cfmint at GET /cfmint.js; copy it into your app as you like.
 *
 *   const session = new Cfmint({
 *     api: "https://auth.example.com",   // where cfmint serve runs
 *     path: "/audiobooks/42/",            // what to mint (optional: the server's default)
 *     token: undefined,                   // a bearer JWT instead of a session (optional)
 *     onMint: (minted) => {},             // {resource, expires_at, refresh_at, key_pair_id, policy}
 *     onError: (error) => {},             // error.status: 401 logged out, 403 not granted, ...
 *   });
 *   await session.login("alice", "password");  // unless the app already has a session or a token
 *   session.loginWithProvider(location.href);  // or: through the OpenID provider ([auth.oidc])
 *   await session.start();                      // mints now, then again at each refresh_at
 *   // The CDN answered 403 to a segment: re-mint once, then retry the request.
 *   await session.recover();
 *   await session.logout();                     // ends the session, clears the cookies
 *                                               // (and the provider's, with auth.oidc.end_session)
 *
 * Every call uses fetch with credentials: "include", so the browser stores the
 * HttpOnly cookies cfmint sets and sends them to the CDN; the page never sees
 * them. The player must send credentials too (hls.js: xhrSetup sets
 * withCredentials = true; native players send cookies by themselves).
 */
(function (global) {
  "use strict";

  class Cfmint {
    constructor(options) {
      this.api = options.api.replace(/\/$/, "");
      this.path = options.path;
      this.token = options.token;
      this.onMint = options.onMint || function () {};
      this.onError = options.onError || function () {};
      this.timer = null;
      this.recovering = null;
      this.current = null;
    }

    async request(route, body) {
      const headers = {};
      if (body !== undefined) headers["Content-Type"] = "application/json";
      if (this.token) headers["Authorization"] = "Bearer " + this.token;
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

    /** Mints now and schedules the next mint at refresh_at. */
    async mint() {
      const minted = await this.request("/mint", this.path ? { path: this.path } : {});
      this.current = minted;
      this.schedule(minted);
      this.onMint(minted);
      return minted;
    }

    schedule(minted) {
      clearTimeout(this.timer);
      const delay = Math.max(1000, minted.refresh_at * 1000 - Date.now());
      this.timer = setTimeout(() => {
        this.mint().catch((error) => this.onError(error));
      }, delay);
    }

    /** Mints and keeps the cookies fresh until stop() or logout(). */
    start() {
      return this.mint();
    }

    /** After a 403 from the CDN: one re-mint, shared by concurrent callers. */
    recover() {
      if (!this.recovering) {
        this.recovering = this.mint().finally(() => {
          this.recovering = null;
        });
      }
      return this.recovering;
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

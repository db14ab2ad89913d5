// A single-page app logging in through Pasee (SPEC section 3), with no
// build step and no library:
//
// - providers with a password (kisee, pasee): POST /tokens/?idp=<name>
//   {"login", "password"} answers a token pair;
// - providers with a browser redirect (oauth2, oidc): the page goes to
//   GET /tokens/?idp=<name>&redirect_uri=<this page>&state=<random>, with
//   its own PKCE challenge; Pasee sends the browser to the provider, then
//   back here with ?code=<one-time code>&state=<the same random>; the page
//   checks the state and redeems the code within 60 s with
//   POST /tokens/?grant=code {"code", "code_verifier"};
// - the access token's claims (user, groups) are shown, and the pair is
//   refreshed (POST /tokens/?refresh with the refresh token) before the
//   access token expires.
//
// Tokens are kept in memory only: a reload logs out. Keep them out of
// localStorage, where any script of the origin could read them.
"use strict";

(function () {
  const config = window.SPA_CONFIG || {};
  const pasee = (config.pasee || "http://localhost:8150").replace(/\/+$/, "");
  const redirectUri = config.redirectUri || location.origin + location.pathname;

  let pair = null;
  let refreshTimer = null;
  let refreshes = 0;

  const $ = (id) => document.getElementById(id);

  function showError(message) {
    $("error").textContent = message || "";
  }

  // call sends a JSON request to Pasee and returns the decoded answer;
  // a problem document becomes an Error with its title and detail.
  async function call(method, path, { body, bearer } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = "Bearer " + bearer;
    let response;
    try {
      response = await fetch(pasee + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new Error("Pasee cannot be reached (" + e.message + "); is this origin in its [cors] allowed_origins?");
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const problem = data && data.title ? data.title + (data.detail ? ": " + data.detail : "") : "HTTP " + response.status;
      throw new Error(problem);
    }
    return data;
  }

  // claimsOf decodes a JWT's payload. The app only displays it: the
  // services the token is sent to verify it.
  function claimsOf(jwt) {
    const b64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  }

  function randomString(bytes) {
    const b = crypto.getRandomValues(new Uint8Array(bytes));
    return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function s256(verifier) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    return btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // setPair shows a new token pair and schedules its refresh.
  function setPair(p) {
    pair = p;
    const claims = claimsOf(p.access_token);
    $("user").textContent = claims.sub;
    $("idp").textContent = claims.idp || "";
    const groups = $("groups");
    groups.replaceChildren(...(claims.groups || []).map((g) => {
      const li = document.createElement("li");
      li.textContent = g;
      return li;
    }));
    $("jti").textContent = claims.jti || "";
    $("expires").textContent = new Date(claims.exp * 1000).toLocaleTimeString();
    $("refreshes").textContent = String(refreshes);
    $("login").hidden = true;
    $("session").hidden = false;
    // Refresh when three quarters of the lifetime have passed, and at the
    // latest a minute before expiry. expires_in, not exp, so that a wrong
    // clock on this machine does not matter.
    const lifetime = p.expires_in * 1000;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, Math.max(1000, lifetime - Math.min(60000, lifetime / 4)));
  }

  async function refresh() {
    try {
      const p = await call("POST", "/tokens/?refresh", { bearer: pair.refresh_token });
      refreshes++;
      setPair(p);
    } catch (e) {
      loggedOut("Session ended: " + e.message);
    }
  }

  function loggedOut(message) {
    clearTimeout(refreshTimer);
    pair = null;
    $("session").hidden = true;
    $("login").hidden = false;
    showError(message);
  }

  async function logout() {
    const p = pair;
    loggedOut("");
    if (p) {
      await call("DELETE", "/tokens/", { bearer: p.refresh_token }).catch(() => {});
    }
  }

  // loginWithPassword: kisee and pasee providers.
  async function loginWithPassword(idp, login, password) {
    showError("");
    try {
      setPair(await call("POST", "/tokens/?idp=" + encodeURIComponent(idp), { body: { login, password } }));
    } catch (e) {
      showError(e.message);
    }
  }

  // loginWithRedirect: oauth2 and oidc providers. The state and the PKCE
  // verifier survive the round trip in sessionStorage (this tab only).
  async function loginWithRedirect(idp) {
    const state = randomString(16);
    const params = new URLSearchParams({ idp, redirect_uri: redirectUri, state });
    sessionStorage.setItem("pasee.state", state);
    if (window.crypto && crypto.subtle) { // secure contexts: https, localhost
      const verifier = randomString(32);
      sessionStorage.setItem("pasee.verifier", verifier);
      params.set("code_challenge", await s256(verifier));
      params.set("code_challenge_method", "S256");
    }
    location.assign(pasee + "/tokens/?" + params.toString());
  }

  // completeRedirect handles the return from Pasee: ?code=&state= or
  // ?error=&state=.
  async function completeRedirect(query) {
    const expected = sessionStorage.getItem("pasee.state");
    const verifier = sessionStorage.getItem("pasee.verifier");
    sessionStorage.removeItem("pasee.state");
    sessionStorage.removeItem("pasee.verifier");
    // The code must not stay in the address bar or the history.
    history.replaceState(null, "", location.pathname);
    if (!expected || query.get("state") !== expected) {
      showError("This login was not started by this page (state mismatch): ignored.");
      return;
    }
    if (query.get("error")) {
      showError(query.get("error") === "access_denied" ? "Access denied: you declined at the identity provider." : "Login failed: " + query.get("error"));
      return;
    }
    try {
      const body = { code: query.get("code") };
      if (verifier) body.code_verifier = verifier;
      setPair(await call("POST", "/tokens/?grant=code", { body }));
    } catch (e) {
      showError(e.message);
    }
  }

  // renderProviders asks Pasee how to log in with each provider.
  async function renderProviders() {
    const box = $("providers");
    let how;
    try {
      how = await call("GET", "/tokens/");
    } catch (e) {
      $("loading").textContent = "";
      showError(e.message);
      return;
    }
    $("loading").hidden = true;
    for (const p of how.identity_providers || []) {
      const fs = document.createElement("fieldset");
      const legend = document.createElement("legend");
      legend.textContent = p.name + " (" + p.protocol + ")";
      fs.append(legend);
      if (p.method === "POST") {
        const form = document.createElement("form");
        form.id = "form-" + p.name;
        form.innerHTML = '<label>Login <input name="login" autocomplete="username" required></label>' +
          '<label>Password <input name="password" type="password" autocomplete="current-password" required></label>' +
          "<button></button>";
        form.querySelector("button").textContent = "Log in with " + p.name;
        form.querySelector("button").id = "login-" + p.name;
        form.addEventListener("submit", (ev) => {
          ev.preventDefault();
          loginWithPassword(p.name, form.login.value, form.password.value);
        });
        fs.append(form);
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.id = "redirect-" + p.name;
        button.textContent = "Log in with " + p.name;
        button.addEventListener("click", () => loginWithRedirect(p.name));
        fs.append(button);
      }
      box.append(fs);
    }
    box.dataset.ready = "true";
  }

  $("logout").addEventListener("click", logout);
  const query = new URLSearchParams(location.search);
  if (query.has("code") || query.has("error")) {
    completeRedirect(query);
  }
  renderProviders();
})();

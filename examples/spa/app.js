// A single-page app logging in through Pasee with standard OpenID Connect:
// the authorization code flow with PKCE, run by the oidc-client-ts library
// (vendor/oidc-client-ts.min.js, copied there from npm by `npm ci`; see
// README.md). The app is a public client of Pasee: a [[clients]] entry
// without a secret, whose redirect_uris and post_logout_redirect_uris list
// this page's address.
//
// - Log in: the browser goes to Pasee's authorization endpoint (found by
//   discovery at <issuer>/.well-known/openid-configuration); Pasee's own
//   login page asks for a password or sends the user to their provider,
//   or, within a single sign-on session, asks nothing; back here with
//   ?code=&state=, the library checks the state and redeems the code with
//   its PKCE verifier at the token endpoint.
// - The access token's claims (user, groups: what the services this app
//   calls will see) are shown, and the tokens are renewed with the
//   refresh token (scope offline_access) before the access token expires.
// - Log out: the tokens are revoked, then Pasee's end-session endpoint
//   ends the single sign-on session and sends the browser back here.
//
// Tokens are kept in memory only: a reload forgets them (and logging in
// again goes through Pasee's session without a password). Keep them out
// of localStorage, where any script of the origin could read them.
"use strict";

(function () {
  const config = window.SPA_CONFIG || {};
  const pageURI = config.redirectUri || location.origin + location.pathname;
  const $ = (id) => document.getElementById(id);

  if (!window.oidc || !window.oidc.UserManager) {
    $("error").textContent = "vendor/oidc-client-ts.min.js is missing: run `npm ci` in examples/spa.";
    return;
  }

  const manager = new oidc.UserManager({
    authority: (config.pasee || "http://localhost:8150").replace(/\/+$/, ""),
    client_id: config.clientId || "example-spa",
    redirect_uri: pageURI,
    post_logout_redirect_uri: pageURI,
    response_type: "code",
    scope: "openid profile email groups offline_access",
    // The pending request (state, nonce, PKCE verifier) waits for the
    // return in this tab's sessionStorage; the tokens live in memory.
    stateStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
    userStore: new oidc.WebStorageStateStore({ store: new oidc.InMemoryWebStorage() }),
    automaticSilentRenew: true, // with a refresh token: the refresh_token grant, no iframe
    accessTokenExpiringNotificationTimeInSeconds: config.renewBeforeSeconds || 60,
    revokeTokensOnSignout: true,
  });

  let refreshes = 0;

  function showError(message) {
    $("error").textContent = message || "";
  }

  // claimsOf decodes a JWT's payload. The app only displays it: the
  // services the token is sent to verify it.
  function claimsOf(jwt) {
    const b64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  }

  function show(user) {
    const claims = claimsOf(user.access_token);
    $("user").textContent = user.profile.sub;
    $("idp").textContent = claims.idp || "";
    $("groups").replaceChildren(...(claims.groups || []).map((g) => {
      const li = document.createElement("li");
      li.textContent = g;
      return li;
    }));
    $("jti").textContent = claims.jti || "";
    $("expires").textContent = new Date(claims.exp * 1000).toLocaleTimeString();
    $("refreshes").textContent = String(refreshes);
    $("login").hidden = true;
    $("session").hidden = false;
  }

  function loggedOut(message) {
    $("session").hidden = true;
    $("login").hidden = false;
    showError(message);
  }

  // Each renewal (and the first login) loads a user.
  manager.events.addUserLoaded((user) => {
    if (!$("session").hidden) refreshes++;
    show(user);
  });
  manager.events.addSilentRenewError((e) => {
    manager.removeUser();
    loggedOut("Session ended: " + (e.error_description || e.message));
  });

  $("login-button").addEventListener("click", () => {
    showError("");
    manager.signinRedirect().catch((e) => showError("Pasee cannot be reached (" + e.message + "); is this origin in its [cors] allowed_origins?"));
  });
  $("logout").addEventListener("click", () => {
    manager.signoutRedirect().catch((e) => {
      manager.removeUser();
      loggedOut("Logged out here, but Pasee could not be told: " + e.message);
    });
  });

  // completeLogin handles the return from Pasee: ?code=&state= or
  // ?error=&state=. The code must not stay in the address bar or history.
  async function completeLogin() {
    try {
      await manager.signinRedirectCallback();
    } catch (e) {
      if (e.error === "access_denied") showError("Access denied: " + (e.error_description || "the login was declined."));
      else showError("Login failed: " + (e.error_description || e.error || e.message));
    } finally {
      history.replaceState(null, "", location.pathname);
    }
  }

  async function completeLogout() {
    try {
      await manager.signoutRedirectCallback();
      showError("");
    } catch (e) {
      showError("Logout: " + (e.error_description || e.message));
    } finally {
      history.replaceState(null, "", location.pathname);
    }
  }

  const query = new URLSearchParams(location.search);
  if (query.has("code") || query.has("error")) {
    completeLogin();
  } else if (query.has("state")) {
    completeLogout();
  }
  $("login").dataset.ready = "true";
})();

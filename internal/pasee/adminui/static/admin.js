// Pasee's administration page (see package adminui). No build step, no
// library: the DOM, fetch and Web Crypto.
//
// - Logging in: the page is a public OpenID Connect client of Pasee (the
//   client id in the body's data-client-id) and uses the authorization
//   code flow with PKCE like any other: the browser goes to Pasee's
//   authorization endpoint, whose login page offers every provider (or,
//   within a single sign-on session, asks nothing), and comes back here
//   with ?code=&state=, redeemed at the token endpoint with the PKCE
//   verifier.
// - Tokens: the access token lives in memory only; the refresh token (and
//   the ID token, the hint of the logout) in sessionStorage, so that a
//   reload of this tab keeps the session while closing the tab ends it.
//   Never localStorage, which every tab and every later visit would share.
//   The pair is renewed (the refresh_token grant) before the access token
//   expires, and once more when Pasee answers 401.
// - Logging out revokes the refresh token, then ends the single sign-on
//   session at Pasee's end-session endpoint, which comes back here.
// - Rights: the page asks Pasee, with the user's token, and nothing else.
//   It shows controls for the groups GET /groups/ marks "administered";
//   Pasee checks every change anyway.
// - Safety: text only ever goes into the page as text (textContent, text
//   nodes); the Content-Security-Policy requires Trusted Types, so an HTML
//   sink would throw.
"use strict";

(() => {
  const body = document.body;
  const base = body.dataset.base || "";
  const redirectUri = body.dataset.redirectUri || location.origin + base + "/admin/";
  const clientId = body.dataset.clientId;
  const endpoints = {
    authorize: body.dataset.authorize, token: body.dataset.token,
    revoke: body.dataset.revoke, endSession: body.dataset.endSession,
  };
  const SCOPE = "openid groups offline_access";
  const REFRESH_KEY = "pasee.admin.refresh";
  const ID_TOKEN_KEY = "pasee.admin.id_token";
  const STATE_KEY = "pasee.admin.state";
  const VERIFIER_KEY = "pasee.admin.verifier";
  const NONCE_KEY = "pasee.admin.nonce";
  const LOGOUT_KEY = "pasee.admin.logout";
  const SECTIONS = ["groups", "users", "audit"];

  const $ = (id) => document.getElementById(id);

  // h builds an element: attributes (on* are listeners), then children
  // (nodes, or strings that become text).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c !== undefined && c !== null && c !== false) el.append(c);
    }
    return el;
  }

  let uid = 0;
  const newId = (prefix) => prefix + "-" + ++uid;
  const enc = encodeURIComponent;
  const isStaffGroup = (g) => g === "staff" || g.endsWith(".staff");
  const plural = (n, one, many) => n + " " + (n === 1 ? one : many);

  // --- Messages -----------------------------------------------------------

  function say(message) {
    $("error").textContent = "";
    $("status").textContent = message;
  }

  function fail(e) {
    $("status").textContent = "";
    $("error").textContent = e && e.message ? e.message : String(e);
  }

  // --- Talking to Pasee -----------------------------------------------------

  // Problem is a refused request: Pasee's problem document, or a network error (status 0).
  class Problem extends Error {
    constructor(status, title, detail) {
      super(detail ? title + ": " + detail : title);
      this.status = status;
      this.title = title;
    }
  }

  async function request(method, path, { body: payload, bearer } = {}) {
    const headers = { Accept: "application/json" };
    if (payload !== undefined) headers["Content-Type"] = "application/json";
    if (bearer) headers.Authorization = "Bearer " + bearer;
    let response;
    try {
      response = await fetch(base + path, {
        method, headers, cache: "no-store", credentials: "omit",
        body: payload === undefined ? undefined : JSON.stringify(payload),
      });
    } catch (e) {
      throw new Problem(0, "Pasee cannot be reached", e.message);
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      let detail = data && data.detail;
      const retry = response.headers.get("Retry-After");
      if (response.status === 429 && retry) detail = (detail ? detail + " " : "") + "Retry in " + retry + " s.";
      throw new Problem(response.status, (data && data.title) || "HTTP " + response.status, detail);
    }
    return data;
  }

  // oauth posts a form to one of Pasee's OAuth endpoints as this client
  // and returns the decoded answer; an RFC 6749 error becomes a Problem.
  async function oauth(endpoint, params) {
    let response;
    try {
      response = await fetch(endpoint, {
        method: "POST", cache: "no-store", credentials: "omit",
        headers: { Accept: "application/json", "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ ...params, client_id: clientId }),
      });
    } catch (e) {
      throw new Problem(0, "Pasee cannot be reached", e.message);
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = (data && data.error_description) || "";
      throw new Problem(response.status, (data && data.error) || "HTTP " + response.status, detail);
    }
    return data;
  }

  // follow turns a "next" link (an absolute URL) into a path for request.
  function follow(next) {
    const u = new URL(next, location.href);
    const p = u.pathname.startsWith(base) ? u.pathname.slice(base.length) : u.pathname;
    return p + u.search;
  }

  // api calls Pasee with the access token; an expired one is renewed once.
  async function api(method, path, payload) {
    if (!session.access) throw new Problem(401, "Not logged in");
    try {
      return await request(method, path, { body: payload, bearer: session.access });
    } catch (e) {
      if (e.status !== 401 || !refreshToken()) throw e;
      await refresh();
      return request(method, path, { body: payload, bearer: session.access });
    }
  }

  // all reads every page of a listing.
  async function all(path, key) {
    const out = [];
    for (let p = path; p; ) {
      const page = await api("GET", p);
      out.push(...page[key]);
      p = page.next ? follow(page.next) : null;
    }
    return out;
  }

  // --- Session --------------------------------------------------------------

  // generation changes at each logout, so that a renewal answered after it
  // is dropped rather than logging the user back in.
  const session = { access: null, claims: null, timer: 0, refreshing: null, renewals: 0, generation: 0 };
  const refreshToken = () => sessionStorage.getItem(REFRESH_KEY);

  // claimsOf decodes a JWT's payload, to show who is logged in and until
  // when: Pasee verifies the token at each call.
  function claimsOf(jwt) {
    const b64 = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
  }

  function setPair(pair) {
    session.access = pair.access_token;
    session.claims = claimsOf(pair.access_token);
    if (pair.refresh_token) sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
    if (pair.id_token) sessionStorage.setItem(ID_TOKEN_KEY, pair.id_token);
    // Renew when three quarters of the lifetime have passed, at the latest
    // a minute before expiry; expires_in, not exp, so that this machine's
    // clock does not matter.
    const lifetime = pair.expires_in * 1000;
    schedule(Math.max(1000, lifetime - Math.min(60000, lifetime / 4)));
    const until = new Date(Date.now() + lifetime).toLocaleTimeString();
    $("user").textContent = session.claims.sub;
    $("session-info").textContent = "Access token valid until " + until + " (renewed " + plural(session.renewals, "time", "times") + ")";
  }

  function schedule(ms) {
    clearTimeout(session.timer);
    session.timer = setTimeout(() => refresh().catch(() => {}), ms);
  }

  // refresh renews the pair; concurrent callers share one request, since a
  // refresh token works once.
  function refresh() {
    if (!session.refreshing) {
      session.refreshing = (async () => {
        const token = refreshToken();
        const generation = session.generation;
        if (!token) throw new Problem(401, "Not logged in");
        try {
          const pair = await oauth(endpoints.token, { grant_type: "refresh_token", refresh_token: token });
          if (generation !== session.generation) throw new Problem(401, "Logged out");
          session.renewals++;
          setPair(pair);
        } catch (e) {
          if (generation !== session.generation) {
            // logged out meanwhile: nothing to do
          } else if (e.status === 0 || e.status >= 500) {
            schedule(5000); // Pasee unreachable: try again, the session may still live
          } else {
            loggedOut("Your session has ended (" + e.message + "). Please log in again.");
          }
          throw e;
        } finally {
          session.refreshing = null;
        }
      })();
    }
    return session.refreshing;
  }

  function loggedOut(message) {
    clearTimeout(session.timer);
    Object.assign(session, { access: null, claims: null, renewals: 0, generation: session.generation + 1 });
    sessionStorage.removeItem(REFRESH_KEY);
    sessionStorage.removeItem(ID_TOKEN_KEY);
    Object.assign(state, { groups: [], selected: null, isStaff: false, shown: null });
    $("whoami").hidden = true;
    $("nav").hidden = true;
    for (const s of SECTIONS) $(s).hidden = true;
    $("group-panel").hidden = true;
    $("user-panel").hidden = true;
    // Nothing of this session stays in the page for the next user.
    for (const id of ["tree", "group-body", "user-facts", "user-actions", "user-groups", "user-list", "audit-rows"]) $(id).replaceChildren();
    if (location.hash) history.replaceState(null, "", location.pathname);
    $("login").hidden = false;
    if (message) fail(message);
  }

  // logout revokes the refresh token (and with it the session's access
  // tokens), then has Pasee end its single sign-on session: the next login
  // asks for a password again.
  async function logout() {
    const token = refreshToken();
    const idToken = sessionStorage.getItem(ID_TOKEN_KEY);
    if (token) await oauth(endpoints.revoke, { token, token_type_hint: "refresh_token" }).catch(() => {});
    loggedOut("");
    const st = randomString(16);
    sessionStorage.setItem(LOGOUT_KEY, st);
    const params = new URLSearchParams({ client_id: clientId, post_logout_redirect_uri: redirectUri, state: st });
    if (idToken) params.set("id_token_hint", idToken);
    say("Logging out of Pasee…");
    location.assign(endpoints.endSession + "?" + params.toString());
  }

  // completeLogout handles the return from the end-session endpoint.
  function completeLogout(query) {
    const expected = sessionStorage.getItem(LOGOUT_KEY);
    sessionStorage.removeItem(LOGOUT_KEY);
    history.replaceState(null, "", location.pathname);
    if (expected && query.get("state") === expected) say("You are logged out.");
    $("login-title").focus();
  }

  // --- Logging in -------------------------------------------------------------

  function randomString(bytes) {
    const b = crypto.getRandomValues(new Uint8Array(bytes));
    return btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function s256(verifier) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    return btoa(String.fromCharCode(...new Uint8Array(digest))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // login starts the authorization code flow; the state, the nonce and
  // the PKCE verifier wait for the return in sessionStorage (this tab only).
  async function login() {
    if (!endpoints.authorize) {
      throw new Error("Pasee is not an OpenID Provider here, so this page cannot log you in: its [jwt] iss must be its hostname (see Pasee's logs).");
    }
    if (!(window.crypto && crypto.subtle)) {
      throw new Error("This page must be served over https (or from localhost) to log in: browsers keep Web Crypto, which PKCE needs, from other pages.");
    }
    const st = randomString(16);
    const nonce = randomString(16);
    const verifier = randomString(32);
    sessionStorage.setItem(STATE_KEY, st);
    sessionStorage.setItem(NONCE_KEY, nonce);
    sessionStorage.setItem(VERIFIER_KEY, verifier);
    const params = new URLSearchParams({
      response_type: "code", client_id: clientId, redirect_uri: redirectUri, scope: SCOPE,
      state: st, nonce, code_challenge: await s256(verifier), code_challenge_method: "S256",
    });
    say("Going to Pasee's login page…");
    location.assign(endpoints.authorize + "?" + params.toString());
  }

  // completeRedirect handles the return: ?code=&state= or ?error=&state=.
  async function completeRedirect(query) {
    const expected = sessionStorage.getItem(STATE_KEY);
    const verifier = sessionStorage.getItem(VERIFIER_KEY);
    const nonce = sessionStorage.getItem(NONCE_KEY);
    for (const k of [STATE_KEY, VERIFIER_KEY, NONCE_KEY]) sessionStorage.removeItem(k);
    history.replaceState(null, "", location.pathname); // the code must not stay in the address bar
    if (!expected || query.get("state") !== expected) {
      loggedOut("This login was not started by this page (state mismatch): ignored.");
      return;
    }
    if (query.get("error")) {
      const why = query.get("error_description");
      loggedOut(query.get("error") === "access_denied" ? "Access denied" + (why ? ": " + why : ": the login was declined.") : "Login failed: " + query.get("error") + (why ? " (" + why + ")" : ""));
      return;
    }
    try {
      const pair = await oauth(endpoints.token, {
        grant_type: "authorization_code", code: query.get("code"), redirect_uri: redirectUri, code_verifier: verifier,
      });
      // The ID token came straight from Pasee's token endpoint; its nonce
      // ties it to the request this tab made.
      if (!pair.id_token || claimsOf(pair.id_token).nonce !== nonce) throw new Error("Pasee's answer does not match this login (nonce mismatch): ignored.");
      setPair(pair);
      await enter();
    } catch (e) {
      loggedOut(e.message);
    }
  }

  // --- The application --------------------------------------------------------

  const state = { groups: [], isStaff: false, selected: null, auditNext: null, usersNext: null, shown: null };

  async function enter() {
    $("login").hidden = true;
    $("whoami").hidden = false;
    $("nav").hidden = false;
    say("");
    await loadGroups();
    state.shown = null;
    route();
  }

  // route shows the section named by the address's fragment (the
  // navigation links change it) and moves the focus to its heading.
  function route() {
    if (!session.access) return;
    let name = location.hash.slice(1);
    if (!SECTIONS.includes(name) || (name === "audit" && !state.isStaff)) name = "groups";
    activate(name, true);
  }

  // show shows a section from the page's own code, which then moves the
  // focus itself.
  function show(name) {
    activate(name, false);
    if (location.hash !== "#" + name) location.hash = name; // a history entry; route finds it shown
  }

  function activate(name, focus) {
    for (const s of SECTIONS) {
      $(s).hidden = s !== name;
      const link = $("nav-" + s);
      if (s === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (state.shown === name) return;
    if (state.shown) say(""); // a message of another section
    state.shown = name;
    if (name === "audit") loadAudit(true).catch(fail);
    if (name === "users" && state.isStaff) loadUsers(true).catch(fail);
    if (focus) $(name + "-title").focus();
  }

  // --- Groups -------------------------------------------------------------------

  async function loadGroups() {
    state.groups = await all("/groups/?limit=200", "groups");
    state.isStaff = state.groups.some((g) => g.group === "staff" && g.administered);
    $("create-root").hidden = !state.isStaff;
    $("nav-audit-item").hidden = !state.isStaff;
    $("all-users").hidden = !state.isStaff;
    renderTree();
  }

  const groupItem = (name) => state.groups.find((g) => g.group === name);

  // renderTree draws the groups as a tree of their names. A staff group
  // X.staff is shown in X's panel rather than as a child of X; ancestors the
  // user may not see are shown as plain names, to keep the tree a tree.
  function renderTree() {
    const listed = new Set(state.groups.map((g) => g.group));
    const root = { children: new Map() };
    for (const g of state.groups) {
      if (g.group !== "staff" && isStaffGroup(g.group) && listed.has(g.group.slice(0, -".staff".length))) continue;
      let node = root;
      let name = "";
      for (const seg of g.group.split(".")) {
        name = name ? name + "." + seg : seg;
        if (!node.children.has(seg)) node.children.set(seg, { name, seg, children: new Map(), item: null });
        node = node.children.get(seg);
      }
      node.item = g;
    }
    $("tree").replaceChildren(...treeNodes(root));
    $("no-groups").hidden = state.groups.length > 0;
  }

  function treeNodes(node) {
    const children = [...node.children.values()].sort((a, b) => (a.seg < b.seg ? -1 : a.seg > b.seg ? 1 : 0));
    return children.map((n) => {
      const li = h("li", {});
      if (n.item) {
        const admin = n.item.administered;
        li.append(
          h("button", {
            type: "button", class: "group", dataset: { group: n.name }, "aria-label": n.name,
            "aria-current": n.name === state.selected ? "true" : null, onclick: () => openGroup(n.name),
          }, n.seg),
          " ",
          h("span", { class: admin ? "badge admin" : "badge member" }, admin ? "administrator" : "member"),
        );
      } else {
        li.append(h("span", { class: "unlisted", dataset: { group: n.name }, title: "You neither belong to nor administer " + n.name }, n.seg));
      }
      if (n.children.size) li.append(h("ul", {}, treeNodes(n)));
      return li;
    });
  }

  // openGroup shows a group's members (and staff, and what its
  // administrators may do) in the panel.
  async function openGroup(name, { focus = true } = {}) {
    state.selected = name;
    for (const b of document.querySelectorAll("#tree button.group")) {
      if (b.dataset.group === name) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    }
    const item = groupItem(name);
    const admin = Boolean(item && item.administered);
    $("group-panel").hidden = false;
    $("group-panel").dataset.group = name;
    $("group-title").textContent = name;
    $("group-role").textContent = admin
      ? "You administer this group: you may add and remove its members and staff, and create subgroups."
      : "You belong to this group. Only its administrators may change it.";
    const parts = [memberList(name, "Members", admin)];
    const staff = isStaffGroup(name) ? null : name + ".staff";
    if (staff && (admin || groupItem(staff))) parts.push(memberList(staff, "Staff", admin));
    if (admin && !isStaffGroup(name)) parts.push({ element: subgroupForm(name) });
    $("group-body").replaceChildren(...parts.map((p) => p.element));
    if (focus) $("group-title").focus();
    await Promise.all(parts.filter((p) => p.load).map((p) => p.load()));
  }

  function memberList(group, title, admin) {
    const headingId = newId("members-title");
    const list = h("ul", { class: "members", "aria-labelledby": headingId });
    const more = h("button", { type: "button", hidden: true }, "Show more");
    const heading = h("h3", { id: headingId, tabindex: "-1" }, title, " ", h("span", { class: "hint" }, group));
    let next = null;
    async function load(reset) {
      const page = await api("GET", reset ? "/groups/" + enc(group) + "/?limit=100" : next);
      if (reset) list.replaceChildren();
      for (const m of page.members) list.append(memberItem(group, m.username, admin, heading, () => load(true)));
      if (!list.children.length) list.append(h("li", { class: "empty" }, "No members."));
      next = page.next ? follow(page.next) : null;
      more.hidden = !next;
    }
    more.addEventListener("click", () => load(false).catch(fail));
    const label = title === "Staff" ? "Add a staff member" : "Add a member";
    const element = h("section", { class: "member-list", dataset: { group }, "aria-labelledby": headingId },
      heading, list, h("p", {}, more), admin ? addForm(group, label, () => load(true)) : null);
    return { element, load: () => load(true).catch(fail) };
  }

  function memberItem(group, username, admin, heading, reload) {
    const li = h("li", { dataset: { user: username } },
      h("button", { type: "button", class: "link", onclick: () => lookupUser(username) }, username));
    if (admin) {
      li.append(" ", h("button", {
        type: "button", class: "remove", "aria-label": "Remove " + username + " from " + group,
        onclick: async () => {
          try {
            await api("DELETE", "/groups/" + enc(group) + "/" + enc(username) + "/");
            say(username + " removed from " + group + ".");
            heading.focus();
            await reload();
            if (session.claims && username === session.claims.sub) await loadGroups();
          } catch (e) {
            fail(e);
          }
        },
      }, "Remove"));
    }
    return li;
  }

  function addForm(group, label, reload) {
    const inputId = newId("add");
    const hintId = newId("add-hint");
    const input = h("input", {
      id: inputId, name: "username", required: true, autocomplete: "off", autocapitalize: "none",
      spellcheck: "false", placeholder: "kisee-alice", "aria-describedby": hintId,
    });
    const form = h("form", { class: "add-member", dataset: { group } },
      h("p", { class: "field" }, h("label", { for: inputId }, label),
        h("span", { class: "row" }, input, h("button", { type: "submit" }, "Add"))),
      h("p", { id: hintId, class: "hint" }, "Users are named <provider>-<id>; one not yet known is recorded."));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const username = input.value.trim();
      if (!username) return;
      try {
        await api("POST", "/groups/" + enc(group) + "/", { username });
        input.value = "";
        say(username + " added to " + group + ".");
        await reload();
        if (session.claims && username === session.claims.sub) await loadGroups();
      } catch (e) {
        fail(e);
      }
      input.focus();
    });
    return form;
  }

  function subgroupForm(parent) {
    const inputId = newId("subgroup");
    const hintId = newId("subgroup-hint");
    const input = h("input", {
      id: inputId, name: "group", required: true, autocomplete: "off", autocapitalize: "none", spellcheck: "false",
      pattern: "[a-z0-9_\\-]{1,64}", "aria-describedby": hintId,
    });
    const form = h("form", { class: "create-subgroup", dataset: { group: parent } },
      h("h3", {}, "Create a subgroup"),
      h("p", { class: "field" }, h("label", { for: inputId }, "Name of the subgroup of " + parent),
        h("span", { class: "row" }, h("span", { class: "prefix", "aria-hidden": "true" }, parent + "."), input, h("button", { type: "submit" }, "Create"))),
      h("p", { id: hintId, class: "hint" }, "Lower-case letters, digits, \"_\" and \"-\". You become a member of its staff."));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      createGroup(parent + "." + input.value.trim(), input);
    });
    return form;
  }

  async function createGroup(name, input) {
    try {
      await api("POST", "/groups/", { group: name });
      input.value = "";
      say("Group " + name + " created.");
      await loadGroups();
      await openGroup(name);
    } catch (e) {
      fail(e);
      input.focus();
    }
  }

  // --- Users ----------------------------------------------------------------------

  async function lookupUser(name) {
    show("users");
    $("lookup-name").value = name;
    const me = session.claims.sub;
    const panel = $("user-panel");
    panel.hidden = false;
    panel.dataset.user = name;
    $("user-title").textContent = name;
    $("user-facts").replaceChildren();
    $("user-actions").replaceChildren();
    $("user-groups").replaceChildren();
    $("user-groups-note").textContent = "";
    $("user-title").focus();
    const [info, groups] = await Promise.allSettled([
      state.isStaff || name === me ? api("GET", "/users/" + enc(name)) : Promise.resolve(null),
      all("/groups/?limit=200&user=" + enc(name), "groups"),
    ]);
    if (info.status === "rejected") {
      fail(info.reason);
      if (info.reason.status === 404) return;
    } else if (info.value) {
      const u = info.value;
      const fact = (k, v, id) => [h("dt", {}, k), h("dd", id ? { id } : {}, v)];
      $("user-facts").replaceChildren(
        ...fact("State", u.is_banned ? "Banned" : "Active", "user-state"),
        ...fact("Known since", when(u.created_at)),
        ...fact("Last login", u.last_login_at ? when(u.last_login_at) : "never"),
      );
      if (state.isStaff) $("user-actions").replaceChildren(...userActions(u, name === me));
    }
    if (groups.status === "rejected") {
      $("user-groups-note").textContent = groups.reason.status === 403
        ? "You administer none of " + name + "'s groups." : groups.reason.message;
      return;
    }
    $("user-groups-note").textContent = state.isStaff || name === me ? "" : "Only the groups you administer are shown.";
    const list = groups.value;
    $("user-groups").replaceChildren(...(list.length ? list.map((g) => h("li", {},
      groupItem(g.group) ? h("button", { type: "button", class: "link", onclick: () => { show("groups"); openGroup(g.group); } }, g.group) : g.group,
    )) : [h("li", { class: "empty" }, "No groups.")]));
  }

  function when(iso) {
    return h("time", { datetime: iso }, new Date(iso).toLocaleString());
  }

  // userActions are staff's buttons: ban or unban, revoke sessions. The
  // ones that end sessions ask for confirmation first.
  function userActions(u, self) {
    const name = u.username;
    const again = () => lookupUser(name);
    const out = [];
    if (u.is_banned) {
      out.push(h("button", { id: "unban", type: "button", onclick: () => act(() => api("PATCH", "/users/" + enc(name), { is_banned: false }), name + " is no longer banned.", again) }, "Unban " + name));
    } else if (!self) {
      out.push(h("button", { id: "ban", type: "button", class: "danger", onclick: () => confirmAction(
        "Ban " + name + "? Every session ends at once and Pasee refuses new logins.", "Ban",
        () => act(() => api("PATCH", "/users/" + enc(name), { is_banned: true }), name + " is banned; their sessions are revoked.", again)) }, "Ban " + name));
    }
    out.push(h("button", { id: "revoke", type: "button", class: "danger", onclick: () => confirmAction(
      "Revoke every session of " + name + "? They will have to log in again; they are not banned.", "Revoke sessions",
      () => act(async () => {
        const r = await api("DELETE", "/users/" + enc(name) + "/sessions");
        return plural(r.revoked, "session", "sessions") + " of " + name + " revoked.";
      }, null, again)) }, "Revoke sessions"));
    return out;
  }

  function confirmAction(question, verb, action) {
    const yes = h("button", { id: "confirm", type: "button", class: "danger" }, verb);
    const no = h("button", { id: "cancel", type: "button" }, "Cancel");
    const box = h("div", { class: "confirm", role: "group", "aria-label": "Confirmation" }, h("p", {}, question), yes, " ", no);
    yes.addEventListener("click", action);
    no.addEventListener("click", () => lookupUser($("user-panel").dataset.user));
    $("user-actions").replaceChildren(box);
    yes.focus();
  }

  async function act(doIt, message, after) {
    try {
      const result = await doIt();
      await after();
      say(message || result);
    } catch (e) {
      fail(e);
    }
  }

  async function loadUsers(reset) {
    const page = await api("GET", reset ? "/users/?limit=100" : state.usersNext);
    if (reset) $("user-list").replaceChildren();
    for (const u of page.users) {
      $("user-list").append(h("li", {}, h("button", { type: "button", class: "link", onclick: () => lookupUser(u.username) }, u.username)));
    }
    state.usersNext = page.next ? follow(page.next) : null;
    $("more-users").hidden = !state.usersNext;
  }

  // --- Audit log --------------------------------------------------------------------

  async function loadAudit(reset) {
    const page = await api("GET", reset ? "/audit/?limit=50" : state.auditNext);
    const rows = $("audit-rows");
    if (reset) rows.replaceChildren();
    for (const e of page.events) {
      const cell = (label, ...content) => h("td", { role: "cell", dataset: { label } }, ...content);
      rows.append(h("tr", { role: "row", dataset: { id: String(e.id) } },
        cell("When", when(e.at)), cell("Who", e.actor), cell("Action", h("code", {}, e.action)),
        cell("Target", e.target), cell("Detail", e.detail || "")));
    }
    state.auditNext = page.next ? follow(page.next) : null;
    $("audit-more").hidden = !state.auditNext;
  }

  // --- Start --------------------------------------------------------------------------

  $("login-button").addEventListener("click", () => login().catch(fail));
  $("logout").addEventListener("click", logout);
  $("create-root").addEventListener("submit", (ev) => {
    ev.preventDefault();
    createGroup($("root-name").value.trim(), $("root-name"));
  });
  $("lookup").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("lookup-name").value.trim();
    if (name) lookupUser(name);
  });
  $("audit-more").addEventListener("click", () => loadAudit(false).catch(fail));
  $("more-users").addEventListener("click", () => loadUsers(false).catch(fail));
  window.addEventListener("hashchange", route);

  const query = new URLSearchParams(location.search);
  if (query.has("code") || query.has("error")) {
    $("login").hidden = true;
    completeRedirect(query);
  } else if (query.has("state")) {
    completeLogout(query);
  } else if (refreshToken()) {
    // A reload of this tab: the refresh token in sessionStorage brings the session back.
    $("login").hidden = true;
    say("Restoring your session…");
    refresh().then(enter).catch((e) => {
      if (session.access) return fail(e);
      clearTimeout(session.timer);
      $("login").hidden = false;
      fail(e);
    });
  }
})();

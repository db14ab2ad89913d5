package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	htu "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// The administration page, driven in Chromium through the groups scenario
// of SPEC section 3, checking at each step what the page shows: a staff
// member creates admin and admin.developers and puts John in
// admin.developers.staff; John adds Alan, Ada and Donald to
// admin.developers; Ada, a plain member, sees the group read-only — and
// Pasee refuses her changes anyway. Then staff look up, ban, unban and
// revoke the sessions of a user, and read the audit log; the page renews
// its token, survives a reload, fits a phone, logs out, and logs in through
// a redirect provider too.
//
// With UPDATE_SCREENSHOTS=1 the test writes docs/screenshots/*.png.
func TestAdministrationPage(t *testing.T) {
	ctx := browser(t)
	started := time.Now()
	problems := watchConsole(t, ctx)
	pasee, github := startAdmin(t)
	p := &adminPage{t: t, ctx: ctx, pasee: pasee}
	admin := pasee.URL + "/admin/"

	// The login screen lists the providers; the page comes with its policy.
	resp, err := chromedp.RunResponse(ctx, chromedp.EmulateViewport(1100, 760), chromedp.Navigate(admin))
	if err != nil {
		t.Fatal(err)
	}
	csp := ""
	for k, v := range resp.Headers {
		if strings.EqualFold(k, "Content-Security-Policy") {
			csp, _ = v.(string)
		}
	}
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("Content-Security-Policy of /admin/: %q", csp)
	}
	p.do("the login screen", chromedp.WaitVisible(chromedp.ID("login-button")))
	if n := evaluate[int](p, `[...document.scripts].filter(s => !s.src).length`); n != 0 {
		t.Fatalf("%d inline scripts", n)
	}
	p.checkLabels("the login screen")
	// Logging in is Pasee's login page, which lists the providers.
	p.do("Pasee's login page", chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("login-kisee")), chromedp.WaitVisible(chromedp.CSS(githubButton)))
	p.checkLabels("Pasee's login page")
	p.screenshot("login", true)
	p.do("back to the page", chromedp.Navigate(admin), chromedp.WaitVisible(chromedp.ID("login-button")))

	// A staff member creates admin, then admin.developers, and puts John
	// in its staff.
	p.login("you")
	p.wantTree("staff: administrator")
	p.do("create the root group admin",
		chromedp.SendKeys(chromedp.ID("root-name"), "admin\n"),
		chromedp.Poll[chromedp.Void](`document.getElementById("group-title").textContent === "admin"`, chromedp.WithPollingTimeout(5*time.Second)))
	p.wantSaid("Group admin created.")
	p.wantTree("admin: administrator", "staff: administrator")
	p.waitMembers("admin.staff", "kisee-you")
	p.do("create admin.developers",
		chromedp.SendKeys(chromedp.CSS(`form.create-subgroup[data-group="admin"] input`), "developers\n"),
		chromedp.Poll[chromedp.Void](`document.getElementById("group-title").textContent === "admin.developers"`, chromedp.WithPollingTimeout(5*time.Second)))
	p.wantTree("admin: administrator", "admin.developers: administrator", "staff: administrator")
	p.waitMembers("admin.developers")
	p.waitMembers("admin.developers.staff", "kisee-you")
	p.do("add John to admin.developers.staff",
		chromedp.SendKeys(chromedp.CSS(`form.add-member[data-group="admin.developers.staff"] input`), "kisee-john\n"))
	p.waitMembers("admin.developers.staff", "kisee-john", "kisee-you")
	p.wantSaid("kisee-john added to admin.developers.staff.")
	p.logout()

	// John administers admin.developers (and sees admin only as its
	// parent's name): he adds Alan, Ada and Donald.
	p.login("john")
	p.wantTree("admin: hidden", "admin.developers: administrator")
	if !evaluate[bool](p, `document.getElementById("create-root").hidden && document.getElementById("nav-audit-item").hidden`) {
		t.Fatal("John, who is not staff, is offered root groups or the audit log")
	}
	p.openGroup("admin.developers")
	for _, u := range []string{"kisee-alan", "kisee-ada", "kisee-donald"} {
		p.do("add "+u, chromedp.SendKeys(chromedp.CSS(`form.add-member[data-group="admin.developers"] input`), u+"\n"))
		p.wantSaid(u + " added to admin.developers.")
	}
	p.waitMembers("admin.developers", "kisee-ada", "kisee-alan", "kisee-donald")
	p.waitMembers("admin.developers.staff", "kisee-john", "kisee-you")
	if n := evaluate[int](p, `document.querySelectorAll("#group-panel button.remove").length`); n != 5 {
		t.Fatalf("%d remove buttons for 3 members and 2 staff", n)
	}
	p.checkLabels("John's group panel")
	p.screenshot("group-members", true)
	p.logout()

	// Ada, keyboard only: Tab to the login button, Enter; on Pasee's login
	// page Tab to the login, type, Enter; Tab to her group, Enter.
	p.tabTo("#login-button", 4)
	p.do("go to Pasee's login page with Enter", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("login-kisee")))
	p.tabTo("#login-kisee", 4)
	p.do("type Ada's login", chromedp.KeyEvent("ada"), chromedp.KeyEvent(kb.Tab))
	if id := evaluate[string](p, `document.activeElement.id`); id != "password-kisee" {
		t.Fatalf("Tab from the login went to #%s", id)
	}
	p.do("type Ada's password and press Enter", chromedp.KeyEvent("ada password"), chromedp.KeyEvent(kb.Enter))
	p.back("Ada logged in, the focus on the groups", `document.getElementById("user").textContent === "kisee-ada" && document.activeElement.id === "groups-title"`)
	p.wantTree("admin: hidden", "admin.developers: member")
	p.tabTo(`button.group[data-group="admin.developers"]`, 3)
	p.do("open the group with Enter", chromedp.KeyEvent(kb.Enter),
		chromedp.Poll[chromedp.Void](`document.activeElement.id === "group-title" && document.getElementById("group-title").textContent === "admin.developers"`, chromedp.WithPollingTimeout(5*time.Second)))
	p.waitMembers("admin.developers", "kisee-ada", "kisee-alan", "kisee-donald")
	// She sees no control for a group she does not administer...
	controls := evaluate[int](p, `document.querySelectorAll("#group-panel form, #group-panel button.remove, #group-panel section[data-group$='.staff']").length +
		(document.getElementById("create-root").hidden ? 0 : 1) + (document.getElementById("nav-audit-item").hidden ? 0 : 1)`)
	if controls != 0 {
		t.Fatalf("Ada is shown %d controls", controls)
	}
	if role := p.text("group-role"); !strings.Contains(role, "Only its administrators may change it") {
		t.Fatalf("group role: %q", role)
	}
	// ...and Pasee refuses her anyway, when her token is sent from the page.
	ada := login(t, pasee, "ada")
	statuses := evaluate[[]int](p, fmt.Sprintf(`(async () => {
		const auth = {Authorization: "Bearer " + %q, "Content-Type": "application/json"};
		const call = (method, path, body) => fetch(path, {method, headers: auth, body: body && JSON.stringify(body)}).then(r => r.status);
		return Promise.all([
			call("POST", "/groups/admin.developers/", {username: "kisee-mallory"}),
			call("DELETE", "/groups/admin.developers/kisee-alan/"),
			call("POST", "/groups/", {group: "admin.developers.mine"}),
			call("POST", "/groups/admin.developers.staff/", {username: "kisee-ada"}),
			call("DELETE", "/users/kisee-alan/sessions"),
		]);
	})()`, ada.access), chromedp.EvalAwaitPromise)
	if !slices.Equal(statuses, []int{403, 403, 403, 403, 403}) {
		t.Fatalf("Ada's changes from the page: %v, want 403 each", statuses)
	}
	p.logout()

	// Staff again: the users screen.
	p.login("you")
	p.wantTree("admin: administrator", "admin.developers: administrator", "staff: administrator")
	p.openGroup("admin.developers")
	p.waitMembers("admin.developers", "kisee-ada", "kisee-alan", "kisee-donald")
	p.screenshot("group-tree", true)
	p.do("open Ada from the member list", chromedp.Click(chromedp.CSS(`section[data-group="admin.developers"] li[data-user="kisee-ada"] button.link`)))
	p.waitFor("Ada's record", `document.getElementById("user-state") && document.getElementById("user-state").textContent === "Active"`)
	if g := evaluate[[]string](p, `[...document.querySelectorAll("#user-groups li")].map(li => li.textContent)`); !slices.Equal(g, []string{"admin.developers"}) {
		t.Fatalf("Ada's groups: %v", g)
	}
	p.waitFor("the list of users", `[...document.querySelectorAll("#user-list li")].map(li => li.textContent).includes("kisee-donald")`)
	p.checkLabels("the users screen")
	p.screenshot("user", true)

	// Ban: confirmed, shown, enforced; unban.
	p.do("ban Ada", chromedp.Click(chromedp.ID("ban")), chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm")))
	p.waitFor("Ada banned", `document.getElementById("user-state") && document.getElementById("user-state").textContent === "Banned"`)
	p.wantSaid("kisee-ada is banned; their sessions are revoked.")
	htu.Do(t, "GET", pasee.URL+"/groups/", nil, htu.Bearer(ada.access)...).WantProblem(t, 403, "User is banned")
	if r := htu.Do(t, "POST", pasee.URL+"/tokens/?refresh", nil, htu.Bearer(ada.refresh)...); r.StatusCode == 201 {
		t.Fatal("a banned user's session was refreshed")
	}
	p.do("unban Ada", chromedp.Click(chromedp.ID("unban")))
	p.waitFor("Ada unbanned", `document.getElementById("user-state") && document.getElementById("user-state").textContent === "Active"`)
	p.wantSaid("kisee-ada is no longer banned.")

	// Revoke sessions: Ada's new session ends; she is not banned.
	ada = login(t, pasee, "ada")
	p.do("revoke Ada's sessions", chromedp.Click(chromedp.ID("revoke")), chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm")))
	p.waitFor("sessions revoked", `document.getElementById("status").textContent === "1 session of kisee-ada revoked."`)
	htu.Do(t, "POST", pasee.URL+"/tokens/?refresh", nil, htu.Bearer(ada.refresh)...).WantProblem(t, 401, "Session revoked")
	login(t, pasee, "ada")

	// The audit log shows every change, newest first, page by page.
	p.do("open the audit log", chromedp.Click(chromedp.ID("nav-audit")))
	p.waitFor("the audit log", `[...document.querySelectorAll("#audit-rows tr")].some(tr => tr.textContent.includes("session.revoke"))`)
	p.screenshot("audit-log", true)
	addToGroups(t, pasee, "kisee-bulk", "archive")
	for i := range 60 { // more than a page of 50
		if err := pasee.App.Store.AddMember(context.Background(), "cli", "archive", fmt.Sprintf("kisee-bulk%02d", i), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	p.do("read the audit log again", chromedp.Click(chromedp.ID("nav-groups")), chromedp.Click(chromedp.ID("nav-audit")), chromedp.WaitVisible(chromedp.ID("audit-more")))
	p.do("show older events", chromedp.Click(chromedp.ID("audit-more")))
	p.waitFor("the audit log, all of it", `document.getElementById("audit-more").hidden && document.querySelectorAll("#audit-rows tr").length > 60`)
	events := evaluate[[]string](p, `[...document.querySelectorAll("#audit-rows tr")].map(tr => [...tr.cells].slice(1).map(td => td.textContent).join(" "))`)
	for _, want := range []string{
		"kisee-you group.create admin ",
		"kisee-you group.create admin.developers ",
		"kisee-you member.add admin.developers.staff kisee-john",
		"kisee-john member.add admin.developers kisee-ada",
		"kisee-you user.ban kisee-ada 1 sessions revoked",
		"kisee-you user.unban kisee-ada ",
		"kisee-you session.revoke kisee-ada 1 sessions revoked",
	} {
		if !slices.Contains(events, want) {
			t.Errorf("the audit log does not show %q", want)
		}
	}
	if events[0] != "cli member.add archive kisee-bulk59" {
		t.Errorf("the newest event shown first is %q", events[0])
	}

	// The page renews its access token (5 s) by itself, and the spent
	// refresh token is dead; a reload of the tab keeps the session.
	first := evaluate[string](p, `sessionStorage.getItem("pasee.admin.refresh")`)
	p.waitFor("a renewal", `/renewed [1-9]/.test(document.getElementById("session-info").textContent) && sessionStorage.getItem("pasee.admin.refresh") !== `+jsString(first))
	renewed := evaluate[string](p, `sessionStorage.getItem("pasee.admin.refresh")`)
	if active(t, pasee, first) || !active(t, pasee, renewed) {
		t.Fatal("after a renewal, the old refresh token should be spent and the new one live")
	}
	p.do("reload the tab", chromedp.Reload(),
		chromedp.Poll[chromedp.Void](`document.getElementById("user").textContent === "kisee-you" && !document.getElementById("audit").hidden && document.querySelectorAll("#audit-rows tr").length > 0`, chromedp.WithPollingTimeout(5*time.Second)))
	if !evaluate[bool](p, `document.getElementById("login").hidden`) {
		t.Fatal("the login screen shows after a reload")
	}

	// A phone: one column, nothing wider than the screen.
	p.do("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	for _, section := range []string{"audit", "users", "groups"} {
		p.do("show "+section, chromedp.Click(chromedp.ID("nav-"+section)), chromedp.WaitVisible(chromedp.ID(section)))
		if section == "groups" {
			p.openGroup("admin.developers")
			p.do("scroll to the top", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		}
		if w := evaluate[[]int](p, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
			t.Errorf("%s on a phone: %d px wide in a %d px screen", section, w[0], w[1])
		}
	}
	p.screenshot("phone", false)
	p.do("back to a desktop screen", chromedp.EmulateViewport(1100, 760))

	// Logging out ends the session at Pasee and forgets the token.
	last := evaluate[string](p, `sessionStorage.getItem("pasee.admin.refresh")`)
	p.logout()
	if evaluate[bool](p, `sessionStorage.getItem("pasee.admin.refresh") !== null`) || active(t, pasee, last) {
		t.Fatal("the refresh token outlived the logout")
	}

	// A redirect provider: Pasee, the provider's consent page, back to
	// /admin/ (allowed without any setting) with a code the page redeems.
	p.do("log in with GitHub",
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.CSS(githubButton)),
		chromedp.Click(chromedp.CSS(githubButton)),
		chromedp.WaitVisible(chromedp.ID("allow")),
		chromedp.Click(chromedp.ID("allow")))
	p.back("logged in with GitHub", `document.getElementById("user").textContent === "github-583231" && !document.getElementById("no-groups").hidden`)
	if loc := evaluate[string](p, `location.href`); loc != admin {
		t.Fatalf("the one-time code stayed in the address bar: %s", loc)
	}
	if q := github.AuthorizeRequests()[0]; q.Get("code_challenge_method") != "S256" {
		t.Fatalf("no PKCE towards the provider: %v", q)
	}
	p.logout()

	if got := problems(); len(got) > 0 {
		t.Errorf("the browser reported:\n%s", strings.Join(got, "\n"))
	}
	t.Logf("administration page test took %s", time.Since(started).Round(time.Millisecond))
}

// adminPeople are the users of the scenario; each logs in to Kisee with
// "<name> password".
var adminPeople = []string{"you", "john", "alan", "ada", "donald"}

// startAdmin starts a Kisee with adminPeople, a GitHub-like provider, and
// a Pasee over both whose access tokens live 5 s, with kisee-you in staff.
// No [cors] setting: the page is Pasee's own.
func startAdmin(t *testing.T) (*paseetest.Server, *oauthtest.Server) {
	t.Helper()
	doc := "[identity_backend]\nclass = \"test\"\n"
	for _, u := range adminPeople {
		doc += fmt.Sprintf("[[identity_backend.options.users]]\nusername = %q\npassword = %q\n", u, u+" password")
	}
	kisee := kiseetest.Start(t, doc)
	github := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub, Interactive: true})
	pasee := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", kisee.URL)+fmt.Sprintf(`
[[identity_providers]]
name = "github"
protocol = "oauth2"
[identity_providers.settings]
preset = "github"
app_id = %q
app_secret = %q
auth_url = %q
token_url = %q
userinfo_url = %q

[jwt]
access_ttl = "5s"
`, github.ClientID(), github.ClientSecret(), github.AuthURL(), github.TokenURL(), github.UserinfoURL())+paseetest.IntrospectionClient)
	github.SetRedirectURIs(pasee.URL + "/tokens/?idp=github")
	addToGroups(t, pasee, "kisee-you", "staff")
	return pasee, github
}

type tokens struct{ access, refresh string }

// login logs who in through the API, as another tab or device would.
func login(t *testing.T, p *paseetest.Server, who string) tokens {
	t.Helper()
	r := htu.Do(t, "POST", p.URL+"/tokens/?idp=kisee", map[string]string{"login": who, "password": who + " password"}).WantStatus(t, 201)
	return tokens{r.JSON["access_token"].(string), r.JSON["refresh_token"].(string)}
}

// active asks Pasee whether a token is live.
func active(t *testing.T, p *paseetest.Server, raw string) bool {
	t.Helper()
	r := htu.Do(t, "POST", p.URL+"/tokens/introspect", map[string]string{"token": raw}, paseetest.IntrospectionAuth()...).WantStatus(t, 200)
	return r.JSON["active"] == true
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// adminPage drives the administration page.
type adminPage struct {
	t     *testing.T
	ctx   context.Context
	pasee *paseetest.Server
}

func (p *adminPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v\nthe page says: %q", what, err, p.said())
	}
}

func evaluate[T any](p *adminPage, expr string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		p.t.Fatalf("evaluate %.80q: %v", expr, err)
	}
	return v
}

// said is what the page shows in its status and error lines.
func (p *adminPage) said() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").textContent + " | " + document.getElementById("error").textContent`))
	return s
}

func (p *adminPage) text(id string) string {
	p.t.Helper()
	return evaluate[string](p, `document.getElementById(`+jsString(id)+`).textContent`)
}

// waitFor waits until a JavaScript condition holds.
func (p *adminPage) waitFor(what, cond string) {
	p.t.Helper()
	p.do("wait for "+what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(10*time.Second)))
}

// wantSaid waits for the page's status line to say message.
func (p *adminPage) wantSaid(message string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("the status %q", message), `document.getElementById("status").textContent === `+jsString(message))
}

// githubButton is the GitHub button of Pasee's login page.
const githubButton = `form:has(input[name=idp][value=github]) button`

// login logs who in: the page's login button, Pasee's login page (a
// password: the logout before ended the single sign-on session), back to
// the page.
func (p *adminPage) login(who string) {
	p.t.Helper()
	p.do("log in as "+who,
		chromedp.WaitVisible(chromedp.ID("login-button")),
		chromedp.Click(chromedp.ID("login-button")),
		chromedp.WaitVisible(chromedp.ID("login-kisee")),
		chromedp.SendKeys(chromedp.ID("login-kisee"), who),
		chromedp.SendKeys(chromedp.ID("password-kisee"), who+" password"),
		chromedp.Submit(chromedp.ID("password-kisee")))
	p.back("logged in as "+who, `document.getElementById("user").textContent === "kisee-`+who+`" && !document.getElementById("groups").hidden`)
}

// back waits, across the redirects back from Pasee, until the
// administration page is loaded and cond holds on it.
func (p *adminPage) back(what, cond string) {
	p.t.Helper()
	onPage := `location.href.startsWith(` + jsString(p.pasee.URL+"/admin/") + `) && !!document.getElementById("user") && (` + cond + `)`
	if !waitUntil(p.ctx, onPage, 10*time.Second) {
		p.t.Fatalf("%s: not so after 10 s; the page says %q\n%s", what, p.said(), whereAmI(p.ctx))
	}
}

// logout logs out of the page and of Pasee's single sign-on session,
// confirming on Pasee's page when Pasee asks.
func (p *adminPage) logout() {
	p.t.Helper()
	p.do("log out", chromedp.Click(chromedp.ID("logout")))
	confirm := `form[action$='/oidc/logout'] button`
	loggedOut := `location.href.startsWith(` + jsString(p.pasee.URL+"/admin/") + `) && !!document.getElementById("status") && document.getElementById("status").textContent === "You are logged out."`
	if !waitUntil(p.ctx, loggedOut+` || !!document.querySelector("`+confirm+`")`, 10*time.Second) {
		p.t.Fatalf("log out: neither logged out nor asked to confirm; the page says %q\n%s", p.said(), whereAmI(p.ctx))
	}
	if !waitUntil(p.ctx, loggedOut, 0) {
		p.do("confirm the logout at Pasee", chromedp.Click(chromedp.CSS(confirm)))
	}
	p.back("logged out", `document.getElementById("status").textContent === "You are logged out." && !document.getElementById("login").hidden`)
}

// tree is the group tree as the page shows it: "group: role" in document
// order, role being administrator, member, or hidden for an ancestor the
// user may not see.
const treeJS = `[...document.querySelectorAll("#tree li")].map(li => {
	const b = li.querySelector(":scope > button.group");
	if (!b) return li.querySelector(":scope > .unlisted").dataset.group + ": hidden";
	return b.dataset.group + ": " + li.querySelector(":scope > .badge").textContent;
})`

func (p *adminPage) wantTree(want ...string) {
	p.t.Helper()
	cond := `JSON.stringify(` + treeJS + `) === ` + jsString(mustJSON(want))
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](cond)); err != nil {
		p.t.Fatalf("the group tree shows %q, want %q", evaluate[[]string](p, treeJS), want)
	}
}

// membersJS lists the members shown for group, or null while they load.
func membersJS(group string) string {
	return `(() => {
		const s = document.querySelector('#group-body section[data-group="' + ` + jsString(group) + ` + '"]');
		const ul = s && s.querySelector("ul.members");
		if (!ul || !ul.children.length) return null;
		return [...ul.querySelectorAll("li[data-user]")].map(li => li.dataset.user);
	})()`
}

func (p *adminPage) waitMembers(group string, want ...string) {
	p.t.Helper()
	if want == nil {
		want = []string{}
	}
	cond := `JSON.stringify(` + membersJS(group) + `) === ` + jsString(mustJSON(want))
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](cond)); err != nil {
		p.t.Fatalf("members of %s shown: %q, want %q (the page says %q)", group, evaluate[[]string](p, membersJS(group)), want, p.said())
	}
}

func (p *adminPage) openGroup(group string) {
	p.t.Helper()
	p.do("open "+group,
		chromedp.Click(chromedp.CSS(`#tree button.group[data-group="`+group+`"]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("group-title").textContent === `+jsString(group), chromedp.WithPollingTimeout(5*time.Second)))
}

// tabTo presses Tab until the focused element matches css.
func (p *adminPage) tabTo(css string, max int) {
	p.t.Helper()
	for range max {
		p.do("press Tab", chromedp.KeyEvent(kb.Tab))
		if evaluate[bool](p, `document.activeElement !== null && document.activeElement.matches(`+jsString(css)+`)`) {
			return
		}
	}
	p.t.Fatalf("%s not reached in %d presses of Tab; the focus is on %s", css, max, evaluate[string](p, `document.activeElement.outerHTML.slice(0, 120)`))
}

// checkLabels fails the test if a visible field has no label or a visible
// button no accessible name.
func (p *adminPage) checkLabels(where string) {
	p.t.Helper()
	bad := evaluate[[]string](p, `[
		...[...document.querySelectorAll("input, select, textarea")].filter(e => e.offsetParent !== null && e.labels.length === 0),
		...[...document.querySelectorAll("button, a")].filter(b => b.offsetParent !== null && !(b.getAttribute("aria-label") || b.textContent.trim())),
	].map(e => e.outerHTML.slice(0, 120))`)
	if len(bad) > 0 {
		p.t.Fatalf("%s: controls without a label or name:\n%s", where, strings.Join(bad, "\n"))
	}
}

// screenshot writes docs/screenshots/<name>.png, of the whole page or of
// the screen, when UPDATE_SCREENSHOTS=1.
func (p *adminPage) screenshot(name string, whole bool) {
	p.t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" {
		return
	}
	shot := chromedp.CaptureScreenshot()
	if whole {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(p.ctx, shot)
	if err != nil {
		p.t.Fatal(err)
	}
	file := filepath.Join("..", "..", "docs", "screenshots", name+".png")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("wrote %s", file)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// watchConsole collects what the browser reports against the pages:
// Content-Security-Policy and Trusted Types violations, and uncaught
// JavaScript exceptions.
func watchConsole(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var (
		mu  sync.Mutex
		out []string
	)
	err := chromedp.Listen(ctx, func(ev any) {
		msg := ""
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			if text := e.Entry.Text; strings.Contains(text, "Content Security Policy") || strings.Contains(text, "Trusted") {
				msg = "console: " + text
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		}
		if msg != "" {
			mu.Lock()
			out = append(out, msg)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(out)
	}
}

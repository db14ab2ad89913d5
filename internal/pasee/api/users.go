package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/internal/web"
)

func (h *Handler) listUsers(c echo.Context) error {
	caller, err := h.caller(c)
	if err != nil {
		return err
	}
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	users, err := h.svc.ListUsers(c.Request().Context(), caller, after, limit)
	if err != nil {
		return problem(err, "Not authorized to list users")
	}
	refs := make([]memberRef, 0, len(users))
	for _, u := range users {
		refs = append(refs, memberRef{Username: u.Name, Href: h.url("/users/" + url.PathEscape(u.Name))})
	}
	last := ""
	if len(users) > 0 {
		last = users[len(users)-1].Name
	}
	return c.JSON(http.StatusOK, struct {
		Next  any         `json:"next"`
		Users []memberRef `json:"users"`
	}{h.nextLink("/users/", last, len(users), limit, nil), refs})
}

type userView struct {
	Username    string   `json:"username"`
	IsBanned    bool     `json:"is_banned"`
	Groups      []string `json:"groups"`
	CreatedAt   string   `json:"created_at"`
	LastLoginAt *string  `json:"last_login_at"`
}

func (h *Handler) getUser(c echo.Context) error {
	caller, name, err := h.callerAnd(c, "username")
	if err != nil {
		return err
	}
	u, err := h.svc.GetUser(c.Request().Context(), caller, name)
	if err != nil {
		return problem(err, "Not authorized to read this user")
	}
	v := userView{Username: u.Name, IsBanned: u.IsBanned, Groups: u.Groups, CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339)}
	if v.Groups == nil {
		v.Groups = []string{}
	}
	if !u.LastLoginAt.IsZero() {
		s := u.LastLoginAt.UTC().Format(time.RFC3339)
		v.LastLoginAt = &s
	}
	return c.JSON(http.StatusOK, v)
}

func (h *Handler) patchUser(c echo.Context) error {
	caller, name, err := h.callerAnd(c, "username")
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := web.DecodeJSON(c, &body); err != nil {
		return err
	}
	if _, ok := body["username"]; ok {
		return web.BadRequest("Username cannot be changed", "A user name is its provider and subject; only is_banned can be changed.")
	}
	raw, ok := body["is_banned"]
	if !ok {
		return web.BadRequest("Nothing to change", `Send {"is_banned": true} or {"is_banned": false}.`)
	}
	var banned bool
	if err := json.Unmarshal(raw, &banned); err != nil {
		return web.BadRequest("Invalid JSON", `Field "is_banned" must be a boolean.`)
	}
	if err := h.svc.SetBanned(c.Request().Context(), caller, name, banned); err != nil {
		return problem(err, "Not authorized to ban users")
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handler) deleteUser(c echo.Context) error {
	caller, name, err := h.callerAnd(c, "username")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteUser(c.Request().Context(), caller, name); err != nil {
		return problem(err, "Not authorized to delete users")
	}
	return c.NoContent(http.StatusNoContent)
}

// revokeSessions ends every live session of a user without banning it
// (staff only): DELETE /users/{username}/sessions.
func (h *Handler) revokeSessions(c echo.Context) error {
	caller, name, err := h.callerAnd(c, "username")
	if err != nil {
		return err
	}
	n, err := h.svc.RevokeUserSessions(c.Request().Context(), caller, name)
	if err != nil {
		return problem(err, "Not authorized to revoke sessions")
	}
	return c.JSON(http.StatusOK, struct {
		Revoked  int    `json:"revoked"`
		Username string `json:"username"`
	}{n, name})
}

func (h *Handler) audit(c echo.Context) error {
	caller, err := h.caller(c)
	if err != nil {
		return err
	}
	_, limit, err := page(c)
	if err != nil {
		return err
	}
	var before int64
	if v := c.QueryParam("before"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before < 0 {
			return web.BadRequest("Invalid pagination", "before must be a non-negative event id.")
		}
	}
	events, err := h.svc.Audit(c.Request().Context(), caller, before, limit)
	if err != nil {
		return problem(err, "Not authorized to read the audit log")
	}
	type event struct {
		ID     int64  `json:"id"`
		At     string `json:"at"`
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Target string `json:"target"`
		Detail string `json:"detail,omitempty"`
	}
	out := make([]event, 0, len(events))
	for _, e := range events {
		out = append(out, event{ID: e.ID, At: e.At.UTC().Format(time.RFC3339), Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail})
	}
	var next *string // null on the last page
	if len(events) == limit {
		u := h.url("/audit/") + "?before=" + strconv.FormatInt(events[len(events)-1].ID, 10) + "&limit=" + strconv.Itoa(limit)
		next = &u
	}
	return c.JSON(http.StatusOK, struct {
		Events []event `json:"events"`
		Next   *string `json:"next"`
	}{out, next})
}

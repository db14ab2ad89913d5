package api

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/kisee-pasee/suite/internal/web"
)

type groupRef struct {
	Group string `json:"group"`
	Href  string `json:"href"`
}

// groupItem is a group of a GET /groups/ listing: Administered tells a
// client (the admin page) whether to offer the caller controls for it.
type groupItem struct {
	groupRef
	Administered bool `json:"administered"`
}

type memberRef struct {
	Username string `json:"username"`
	Href     string `json:"href"`
}

func (h *Handler) groupRefs(names []string) []groupRef {
	out := make([]groupRef, 0, len(names))
	for _, g := range names {
		out = append(out, groupRef{Group: g, Href: h.url("/groups/" + url.PathEscape(g) + "/")})
	}
	return out
}

func (h *Handler) listGroups(c echo.Context) error {
	caller, err := h.caller(c)
	if err != nil {
		return err
	}
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var names []string
	extra := url.Values{}
	if user := c.QueryParam("user"); user != "" {
		if !plausible(user) { // a NUL would reach PostgreSQL, which refuses it in text
			return web.BadRequest("Invalid name", "user must be a user name: UTF-8 without control characters.")
		}
		extra.Set("user", user)
		names, err = h.svc.UserGroups(ctx, caller, user, after, limit)
	} else {
		names, err = h.svc.Groups(ctx, caller, after, limit)
	}
	if err != nil {
		return problem(err, "Not authorized to read these groups")
	}
	administered, err := h.svc.Administered(ctx, caller, names)
	if err != nil {
		return problem(err, "Not authorized to read these groups")
	}
	items := make([]groupItem, 0, len(names))
	for i, ref := range h.groupRefs(names) {
		items = append(items, groupItem{groupRef: ref, Administered: administered[i]})
	}
	last := ""
	if len(names) > 0 {
		last = names[len(names)-1]
	}
	return c.JSON(http.StatusOK, struct {
		Groups []groupItem `json:"groups"`
		Next   any         `json:"next"`
	}{items, h.nextLink("/groups/", last, len(names), limit, extra)})
}

func (h *Handler) createGroup(c echo.Context) error {
	caller, err := h.caller(c)
	if err != nil {
		return err
	}
	var body struct {
		Group string `json:"group"`
	}
	if err := web.DecodeJSON(c, &body); err != nil {
		return err
	}
	if body.Group == "" {
		return web.BadRequest("Missing group", `Send {"group": "parent.child"}.`)
	}
	if err := h.svc.CreateGroup(c.Request().Context(), caller, body.Group); err != nil {
		return problem(err, "Not authorized to create group")
	}
	c.Response().Header().Set(echo.HeaderLocation, "/groups/"+url.PathEscape(body.Group)+"/")
	return c.JSON(http.StatusCreated, groupRef{Group: body.Group, Href: h.url("/groups/" + url.PathEscape(body.Group) + "/")})
}

func (h *Handler) getGroup(c echo.Context) error {
	caller, group, err := h.callerAnd(c, "group")
	if err != nil {
		return err
	}
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	members, err := h.svc.Members(c.Request().Context(), caller, group, after, limit)
	if err != nil {
		return problem(err, "Not authorized to read this group")
	}
	refs := make([]memberRef, 0, len(members))
	for _, m := range members {
		refs = append(refs, memberRef{Username: m, Href: h.url("/users/" + url.PathEscape(m))})
	}
	last := ""
	if len(members) > 0 {
		last = members[len(members)-1]
	}
	return c.JSON(http.StatusOK, struct {
		Group   string      `json:"group"`
		Members []memberRef `json:"members"`
		Next    any         `json:"next"`
	}{group, refs, h.nextLink("/groups/"+url.PathEscape(group)+"/", last, len(members), limit, nil)})
}

func (h *Handler) addMember(c echo.Context) error {
	caller, group, err := h.callerAnd(c, "group")
	if err != nil {
		return err
	}
	var body struct {
		Username string `json:"username"`
	}
	if err := web.DecodeJSON(c, &body); err != nil {
		return err
	}
	if body.Username == "" {
		return web.BadRequest("Missing username", `Send {"username": "kisee-john"}.`)
	}
	if err := h.svc.AddMember(c.Request().Context(), caller, group, body.Username); err != nil {
		return problem(err, "Not authorized to manage this group")
	}
	return c.JSON(http.StatusCreated, memberRef{Username: body.Username, Href: h.url("/users/" + url.PathEscape(body.Username))})
}

func (h *Handler) removeMember(c echo.Context) error {
	caller, group, err := h.callerAnd(c, "group")
	if err != nil {
		return err
	}
	user, err := param(c, "username")
	if err != nil {
		return err
	}
	if err := h.svc.RemoveMember(c.Request().Context(), caller, group, user); err != nil {
		return problem(err, "Not authorized to manage this group")
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handler) deleteGroup(c echo.Context) error {
	caller, group, err := h.callerAnd(c, "group")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteGroup(c.Request().Context(), caller, group); err != nil {
		return problem(err, "Not authorized to delete group")
	}
	return c.NoContent(http.StatusNoContent)
}

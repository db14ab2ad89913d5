package web

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// BearerToken returns the token of an "Authorization: Bearer" header, or
// a 401 problem when there is none.
func BearerToken(c echo.Context) (string, error) {
	tok, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
	if !ok {
		return "", Unauthorized("Missing token", "Send a token in the header \"Authorization: Bearer <token>\".")
	}
	return tok, nil
}

// HasBearer reports whether the request carries a bearer token.
func HasBearer(c echo.Context) bool {
	_, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
	return ok
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

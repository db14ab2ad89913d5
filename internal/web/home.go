package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Home is a JSON-Home document (draft-nottingham-json-home), the entry point
// clients discover a service's resources from.
type Home struct {
	API       HomeAPI             `json:"api"`
	Resources map[string]Resource `json:"resources"`
}

// HomeAPI describes the API as a whole.
type HomeAPI struct {
	Title string            `json:"title"`
	Links map[string]string `json:"links,omitempty"`
}

// Resource is one entry of a JSON-Home.
type Resource struct {
	Href     string            `json:"href,omitempty"`
	HrefTmpl string            `json:"href-template,omitempty"`
	HrefVars map[string]string `json:"href-vars,omitempty"`
	Hints    Hints             `json:"hints"`
}

// Hints say how a resource may be used.
type Hints struct {
	Allow   []string            `json:"allow"`
	Formats map[string]struct{} `json:"formats,omitempty"`
}

// HomeContentType is the media type of a JSON-Home document.
const HomeContentType = "application/json-home"

// Handler serves the document as application/json-home, or as
// application/json to clients that ask for it.
func (h Home) Handler() echo.HandlerFunc {
	return func(c echo.Context) error {
		accept := c.Request().Header.Get(echo.HeaderAccept)
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		if strings.Contains(accept, echo.MIMEApplicationJSON) && !strings.Contains(accept, HomeContentType) {
			return c.JSON(http.StatusOK, h)
		}
		body, err := json.Marshal(h)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, HomeContentType, body)
	}
}

// URL joins a configured public base URL and an absolute path.
func URL(base, path string) string {
	return strings.TrimSuffix(base, "/") + path
}

package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// DecodeJSON reads the request body as JSON into dst, whatever its
// Content-Type (curl -d sends form encoding for what is JSON). Unknown
// fields are ignored. Errors are problem documents: 413 for a body over the
// limit, 400 with a detail naming the field for everything else.
func DecodeJSON(c echo.Context, dst any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return BodyTooLarge(tooBig.Limit)
		}
		return BadRequest("Invalid body", "The request body could not be read.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return BadRequest("Invalid JSON", "The request body is empty; a JSON object is expected.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if dec.More() {
		return BadRequest("Invalid JSON", "The body holds more than one JSON value.")
	}
	return nil
}

func jsonProblem(err error) *Problem {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		want, got := article(jsonKind(typeErr.Type.Kind().String())), article(jsonValueKind(typeErr.Value))
		if typeErr.Field == "" {
			return BadRequest("Invalid JSON", fmt.Sprintf("Expected a JSON %s, got %s.", strings.TrimPrefix(strings.TrimPrefix(want, "an "), "a "), got))
		}
		return BadRequest("Invalid JSON", fmt.Sprintf("Field %q must be %s, not %s.", typeErr.Field, want, got))
	case errors.As(err, &syntaxErr):
		return BadRequest("Invalid JSON", fmt.Sprintf("The body is not valid JSON (at byte %d: %s).", syntaxErr.Offset, syntaxErr.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("Invalid JSON", "The body is truncated JSON.")
	}
	return BadRequest("Invalid JSON", "The body is not valid JSON: "+err.Error())
}

// jsonValueKind names the kind of JSON value the decoder found ("number
// 1.5" is a number).
func jsonValueKind(v string) string {
	if strings.HasPrefix(v, "number") {
		return "number"
	}
	if v == "bool" {
		return "boolean"
	}
	return v
}

// article prefixes a JSON kind with "a" or "an".
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "int", "int64", "int32", "uint", "uint64", "float64", "float32":
		return "number"
	}
	return goKind
}

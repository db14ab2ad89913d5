package token

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// squeezedPEM matches a PEM block whose line breaks were lost, as in
// `public_keys = ["-----BEGIN PUBLIC KEY-----MFYw...==-----END PUBLIC KEY-----"]`
// from the original Pasee documentation.
var squeezedPEM = regexp.MustCompile(`-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]*)-----END ([A-Z0-9 ]+)-----`)

// decodePEM returns the first PEM block of data, tolerating blocks whose
// line breaks were lost and surrounding whitespace.
func decodePEM(data []byte) (*pem.Block, error) {
	if block, _ := pem.Decode(data); block != nil {
		return block, nil
	}
	m := squeezedPEM.FindSubmatch(data)
	if m == nil {
		if len(strings.TrimSpace(string(data))) == 0 {
			return nil, errors.New("empty key: expected a PEM block")
		}
		return nil, errors.New("no PEM block found: expected -----BEGIN ...----- and -----END ...----- lines")
	}
	if string(m[1]) != string(m[3]) {
		return nil, fmt.Errorf("PEM block begins with %q but ends with %q", m[1], m[3])
	}
	body := strings.Join(strings.Fields(string(m[2])), "")
	der, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("PEM block %q: invalid base64: %w", m[1], err)
	}
	return &pem.Block{Type: string(m[1]), Bytes: der}, nil
}

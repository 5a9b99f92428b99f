package provision

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/icholy/digest"
)

// authTransport answers the provisioning server's challenge with the
// agent's credentials, in the scheme the server asks for: HTTP digest
// (RFC 7616, through github.com/icholy/digest, which computes the
// response and reuses the server's nonce with a counted nc) when the
// server offers it, basic otherwise. Credentials are sent only when
// challenged, and only over https to the profile's own host and port: a
// redirect elsewhere gets none.
type authTransport struct {
	base           http.RoundTripper
	digest         *digest.Transport // over base, with the credentials
	host           string            // the profile URL's host:port
	user, password string
}

func newAuthTransport(base http.RoundTripper, host, user, password string) *authTransport {
	return &authTransport{base: base, host: host, user: user, password: password,
		digest: &digest.Transport{Transport: base, Username: user, Password: password}}
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" || req.URL.Host != t.host {
		return t.base.RoundTrip(req)
	}
	resp, err := t.digest.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("digest authentication: %w", err)
	}
	if resp.StatusCode != http.StatusUnauthorized || !offersBasic(resp.Header) {
		return resp, nil
	}
	if _, err := digest.FindChallenge(resp.Header); !errors.Is(err, digest.ErrNoChallenge) {
		return resp, nil // digest offered and answered: basic would only weaken it
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	basic := req.Clone(req.Context())
	basic.SetBasicAuth(t.user, t.password)
	return t.base.RoundTrip(basic)
}

// offersBasic tells whether a 401 asks for basic credentials.
func offersBasic(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		if len(v) >= 6 && strings.EqualFold(v[:6], "basic ") {
			return true
		}
	}
	return false
}

// CloseIdleConnections lets go of the base transport's connections.
func (t *authTransport) CloseIdleConnections() { t.digest.CloseIdleConnections() }

// errRedirect refuses a redirect the profile must not follow.
var errRedirect = errors.New("redirect refused")

// checkRedirect refuses a redirect that leaves https: the profile and
// any credentials would travel unverified and in the clear.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		return fmt.Errorf("%w: %s sends to %s, which is not https", errRedirect, via[len(via)-1].URL, req.URL.Redacted())
	}
	if len(via) >= 5 {
		return fmt.Errorf("%w: more than 5 redirects", errRedirect)
	}
	return nil
}

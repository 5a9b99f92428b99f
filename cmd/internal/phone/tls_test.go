package phone

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/recphone/recphone/callengine/siptest"
)

// The joined client configuration trusts a server certificate from the
// account's CA or the SRS's CA, and no other; the host name is checked
// either way.
func TestJoinClientTLS(t *testing.T) {
	account, srs, other := siptest.NewPKI(t), siptest.NewPKI(t), siptest.NewPKI(t)
	_, _, clientCert := account.Leaf("phone")
	joined := joinClientTLS(&tls.Config{RootCAs: account.Pool, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: srs.Pool, MinVersion: tls.VersionTLS12})
	if len(joined.Certificates) != 1 {
		t.Fatal("the account's client certificate was lost")
	}
	for _, c := range []struct {
		name       string
		pki        *siptest.PKI
		serverName string
		ok         bool
	}{
		{"account CA", account, "127.0.0.1", true},
		{"SRS CA", srs, "127.0.0.1", true},
		{"another CA", other, "127.0.0.1", false},
		{"wrong host", account, "pbx.example.com", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, cert := c.pki.Leaf("server")
			l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				if s, err := l.Accept(); err == nil {
					_ = s.(*tls.Conn).Handshake()
					s.Close()
				}
			}()
			conf := joined.Clone()
			conf.ServerName = c.serverName
			raw, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conn := tls.Client(raw, conf)
			err = conn.Handshake()
			conn.Close()
			if (err == nil) != c.ok {
				t.Fatalf("handshake: %v, want ok %v", err, c.ok)
			}
		})
	}
}

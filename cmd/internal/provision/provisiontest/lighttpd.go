package provisiontest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"testing"
)

// StartLighttpd starts lighttpd, which asks for HTTP digest auth (RFC
// 7616, MD5) when opts has a User; it is stopped when
// the test ends. Tests skip when lighttpd is not installed. Only
// CertFile, KeyFile, User and Password of opts are used.
func StartLighttpd(t *testing.T, opts Options) *Server {
	t.Helper()
	s, bin := newServer(t, "lighttpd", opts)
	auth := ""
	if opts.User != "" {
		// htdigest: user:realm:MD5(user:realm:password); lighttpd derives
		// nothing else from it, so it offers MD5 only.
		const realm = "recphone"
		ha1 := md5.Sum([]byte(opts.User + ":" + realm + ":" + opts.Password))
		file := s.write("htdigest", fmt.Sprintf("%s:%s:%s\n", opts.User, realm, hex.EncodeToString(ha1[:])))
		auth = fmt.Sprintf(`auth.backend = "htdigest"
auth.backend.htdigest.userfile = %q
auth.require = ("/recphone/" => ("method" => "digest", "realm" => %q, "require" => "valid-user"))`, file, realm)
	}
	host, port := splitAddr(s.Addr)
	conf := s.write("lighttpd.conf", fmt.Sprintf(`server.modules = ("mod_openssl", "mod_auth", "mod_authn_file", "mod_accesslog")
server.bind = %q
server.port = %s
server.document-root = "%s/www"
server.errorlog = "%[3]s/error.log"
accesslog.filename = "%[3]s/access.log"
mimetype.assign = (".toml" => "application/toml")
ssl.engine = "enable"
ssl.pemfile = %[4]q
ssl.privkey = %[5]q
%[6]s
`, host, port, s.dir, opts.CertFile, opts.KeyFile, auth))
	s.run(bin, "-D", "-f", conf)
	return s
}

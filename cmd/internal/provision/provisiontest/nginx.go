package provisiontest

import (
	"fmt"
	"testing"
)

// Start starts nginx; it is stopped when the test ends. Tests skip when
// nginx is not installed.
func Start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, bin := newServer(t, "nginx", opts)
	profiles := fmt.Sprintf("alias %s/;", s.Root)
	if opts.Redirect != "" {
		profiles = fmt.Sprintf("return 302 %s$request_uri;", opts.Redirect)
	}
	if opts.User != "" {
		// nginx reads {PLAIN} passwords: no crypt tool is needed here.
		htpasswd := s.write("htpasswd", opts.User+":{PLAIN}"+opts.Password+"\n")
		profiles += fmt.Sprintf("\n      auth_basic \"recphone\";\n      auth_basic_user_file %s;", htpasswd)
	}
	client := ""
	if opts.ClientCA != "" {
		client = fmt.Sprintf("ssl_client_certificate %s;\n    ssl_verify_client on;", opts.ClientCA)
	}
	plain := ""
	if opts.Plain {
		plain = fmt.Sprintf("server {\n    listen %s;\n    location /recphone/ { alias %s/; }\n  }", s.PlainAddr, s.Root)
	}
	// master_process off: one process that never changes user, so it reads
	// the test's 0700 folders even when the tests run as root.
	conf := s.write("nginx.conf", fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/tmp-body;
  proxy_temp_path %[1]s/tmp-proxy;
  fastcgi_temp_path %[1]s/tmp-fastcgi;
  uwsgi_temp_path %[1]s/tmp-uwsgi;
  scgi_temp_path %[1]s/tmp-scgi;
  types { application/toml toml; }
  server {
    listen %[2]s ssl;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    %[5]s
    location /recphone/ {
      %[6]s
    }
  }
  %[7]s
}
`, s.dir, s.Addr, opts.CertFile, opts.KeyFile, client, profiles, plain))
	s.run(bin, "-p", s.dir, "-c", conf)
	return s
}

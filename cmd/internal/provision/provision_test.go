package provision

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recphone/recphone/callengine/siptest"
	"github.com/recphone/recphone/cmd/internal/provision/provisiontest"
	"github.com/recphone/recphone/recording/policy"
)

const profileA = `lock = ["srs", "mode"]
[recording]
srs = ["sip:srs@10.0.0.1;transport=tcp"]
mode = "always"
`

func server(t *testing.T, opts provisiontest.Options) (*provisiontest.Server, *siptest.PKI) {
	pki := siptest.NewPKI(t)
	opts.CertFile, opts.KeyFile, _ = pki.Leaf("prov")
	return provisiontest.Start(t, opts), pki
}

func newProv(t *testing.T, s policy.Provisioning, dir string) *Provisioner {
	t.Helper()
	check := func(f *policy.AdminFile) error {
		_, err := policy.Resolve(f, policy.Settings{}, "profile")
		return err
	}
	p, err := New(Options{Settings: s, Vars: Vars{User: "alice", AOR: "sip:alice@pbx.example", Host: "desk7"}, Dir: dir, Check: check})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// readCache is the cached profile record in dir.
func readCache(t *testing.T, dir string) cached {
	t.Helper()
	var c cached
	raw, err := os.ReadFile(filepath.Join(dir, profileFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExpandEscapes(t *testing.T) {
	got := Expand("https://p/{host}/{user}.toml?aor={aor}", Vars{User: "../bob", AOR: "sip:a@b", Host: "desk 7"})
	if want := "https://p/desk%207/..%2Fbob.toml?aor=sip:a@b"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// A real nginx serves the profile: it is fetched, cached 0600, asked for
// again with If-None-Match (304), and a new one is seen.
func TestFetchCacheAndETag(t *testing.T) {
	srv, pki := server(t, provisiontest.Options{})
	srv.Put("alice.toml", profileA)
	dir := filepath.Join(t.TempDir(), "cache")
	p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}, dir)
	ctx := context.Background()
	prof, err := p.Fetch(ctx)
	if err != nil || prof == nil {
		t.Fatalf("first fetch: %v, %v", prof, err)
	}
	if !slices.Equal(prof.Recording.SRS, []string{"sip:srs@10.0.0.1;transport=tcp"}) {
		t.Fatalf("srs %v", prof.Recording.SRS)
	}
	st := p.Status()
	if st.ETag == "" || st.FetchedAt.IsZero() || !slices.Equal(st.Locked, []string{"mode", "srs"}) || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	for _, name := range []string{profileFile, statusFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	if prof, err := p.Fetch(ctx); err != nil || prof != nil {
		t.Fatalf("unchanged profile: %v, %v", prof, err)
	}
	if codes := srv.Requests(2); !slices.Equal(codes, []string{"200", "304"}) {
		t.Fatalf("server saw %v, want 200 then 304 (If-None-Match)", codes)
	}
	srv.Put("alice.toml", strings.Replace(profileA, "10.0.0.1", "10.0.0.2", 1))
	prof, err = p.Fetch(ctx)
	if err != nil || prof == nil || prof.Recording.SRS[0] != "sip:srs@10.0.0.2;transport=tcp" {
		t.Fatalf("changed profile: %v, %v", prof, err)
	}

	// A phone starting later finds it in the cache, and asks the server
	// conditionally.
	q := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}, dir)
	cached, err := q.Cached()
	if err != nil || cached == nil || cached.Recording.SRS[0] != "sip:srs@10.0.0.2;transport=tcp" || !q.Status().FromCache {
		t.Fatalf("cached: %v, %v", cached, err)
	}
	if prof, err := q.Fetch(ctx); err != nil || prof != nil {
		t.Fatalf("after the cache: %v, %v", prof, err)
	}
	if st, err := ReadStatus(dir); err != nil || st.Source != strings.Replace(srv.URL(), "{user}", "alice", 1) || st.FromCache {
		t.Fatalf("status on disk: %+v, %v", st, err)
	}
	// Another agent's phone does not take alice's profile.
	other, err := New(Options{Settings: policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}, Vars: Vars{User: "bob"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := other.Cached(); c != nil || err != nil {
		t.Fatalf("bob got alice's cached profile: %v, %v", c, err)
	}
}

// A profile that does not parse or validate is rejected whole: the
// profile in force and the cache stay as they were.
func TestBrokenProfileRejectedWhole(t *testing.T) {
	srv, pki := server(t, provisiontest.Options{})
	srv.Put("alice.toml", profileA)
	dir := t.TempDir()
	p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}, dir)
	ctx := context.Background()
	if _, err := p.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"syntax":    "lock = [\"srs\"\n[recording]\nsrs = [\"sip:srs@10.9.9.9\"]\n",
		"unknown":   profileA + "colour = \"red\"\n",
		"invalid":   "[recording]\nsrs = [\"sip:srs@10.9.9.9\"]\nmode = \"sometimes\"\n",
		"redirects": "provisioning_url = \"https://elsewhere.example/x.toml\"\n" + profileA,
	} {
		srv.Put("alice.toml", bad)
		prof, err := p.Fetch(ctx)
		if err == nil || prof != nil || !strings.Contains(err.Error(), "profile rejected") {
			t.Fatalf("%s: %v, %v", name, prof, err)
		}
		if st := p.Status(); st.LastError == "" || st.ErrorAt.IsZero() {
			t.Fatalf("%s: status %+v", name, st)
		}
		if c := readCache(t, dir); c.Profile != profileA {
			t.Fatalf("%s: the cache changed to %q", name, c.Profile)
		}
	}
}

// A server whose certificate does not chain to provisioning_ca (or the
// system's roots) is refused, and the reason says so.
func TestUntrustedServerRefused(t *testing.T) {
	srv, pki := server(t, provisiontest.Options{})
	srv.Put("alice.toml", profileA)
	for name, ca := range map[string]string{"system roots": "", "another CA": siptest.NewPKI(t).CAFile} {
		p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: ca}, t.TempDir())
		prof, err := p.Fetch(context.Background())
		if prof != nil || err == nil || !strings.Contains(err.Error(), "not trusted") {
			t.Fatalf("%s: %v, %v", name, prof, err)
		}
	}
	// An untrusted server gets no request: nothing is logged, even after
	// a request that is.
	p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}, t.TempDir())
	if _, err := p.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if codes := srv.Requests(1); !slices.Equal(codes, []string{"200"}) {
		t.Fatalf("the server saw %v, want only the trusted phone's 200", codes)
	}
}

// Basic credentials and a client certificate, when the server asks for
// them; the password never appears in the status.
func TestServerAuthentication(t *testing.T) {
	t.Run("basic", func(t *testing.T) {
		srv, pki := server(t, provisiontest.Options{User: "alice", Password: "s3cret-pw"})
		srv.Put("alice.toml", profileA)
		dir := t.TempDir()
		if _, err := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}, dir).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: it asks for credentials") {
			t.Fatalf("without credentials: %v", err)
		}
		p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile, User: "alice", Password: "s3cret-pw"}, dir)
		if prof, err := p.Fetch(context.Background()); err != nil || prof == nil {
			t.Fatalf("with credentials: %v, %v", prof, err)
		}
		raw, _ := os.ReadFile(filepath.Join(dir, statusFile))
		if strings.Contains(string(raw), "s3cret") {
			t.Fatal("the password is in the status file")
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		pki := siptest.NewPKI(t)
		opts := provisiontest.Options{ClientCA: pki.CAFile}
		opts.CertFile, opts.KeyFile, _ = pki.Leaf("prov")
		srv := provisiontest.Start(t, opts)
		srv.Put("alice.toml", profileA)
		if _, err := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}, t.TempDir()).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("without a client certificate: %v", err)
		}
		cert, key, _ := pki.Leaf("alice")
		p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile, Cert: cert, Key: key}, t.TempDir())
		if prof, err := p.Fetch(context.Background()); err != nil || prof == nil {
			t.Fatalf("with one: %v, %v", prof, err)
		}
	})
}

func TestBadKeysNamed(t *testing.T) {
	for want, s := range map[string]policy.Provisioning{
		"provisioning_url":      {URL: "http://plain.example/x.toml"},
		"provisioning_interval": {URL: "https://p/x", Interval: "soon"},
		"provisioning_password": {URL: "https://p/x", User: "a"},
		"provisioning_ca":       {URL: "https://p/x", CA: "/nonexistent.pem"},
		"provisioning_key":      {URL: "https://p/x", Cert: "/c.pem"},
	} {
		_, err := New(Options{Settings: s, Dir: t.TempDir()})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %s named", s, err, want)
		}
	}
}

// A failed fetch from another URL saves its status, but never makes the
// profile cached from the first URL that URL's: started again with the
// server down, the phone has no cached profile for it.
func TestCachedOnlyForItsSource(t *testing.T) {
	srv, pki := server(t, provisiontest.Options{})
	srv.Put("alice.toml", profileA)
	dir := t.TempDir()
	s := policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}
	if prof, err := newProv(t, s, dir).Fetch(context.Background()); err != nil || prof == nil {
		t.Fatalf("alice's profile: %v, %v", prof, err)
	}
	bob := func() *Provisioner {
		p, err := New(Options{Settings: s, Vars: Vars{User: "bob"}, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	if _, err := bob().Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("bob's profile is not served, yet: %v", err)
	}
	if st, err := ReadStatus(dir); err != nil || !strings.Contains(st.Source, "bob") || st.LastError == "" {
		t.Fatalf("the failed fetch's status: %+v, %v", st, err)
	}
	srv.Stop()
	if c, err := bob().Cached(); c != nil || err != nil {
		t.Fatalf("bob's phone took alice's cached profile: %+v, %v", c, err)
	}
	if c := readCache(t, dir); !strings.Contains(c.Source, "alice") || c.Profile != profileA {
		t.Fatalf("the cache: %+v", c)
	}
}

// A server asking for HTTP digest (lighttpd, mod_auth with htdigest) is
// answered in digest: a wrong password is a 401 reported as such, the
// right one fetches the profile, and the password is nowhere on disk.
func TestDigestAuthentication(t *testing.T) {
	pki := siptest.NewPKI(t)
	opts := provisiontest.Options{User: "alice", Password: "d1gest-pw"}
	opts.CertFile, opts.KeyFile, _ = pki.Leaf("prov")
	srv := provisiontest.StartLighttpd(t, opts)
	srv.Put("alice.toml", profileA)
	dir := t.TempDir()
	wrong := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile, User: "alice", Password: "guess"}, dir)
	if prof, err := wrong.Fetch(context.Background()); prof != nil || err == nil || !strings.Contains(err.Error(), "401 Unauthorized: it refused provisioning_user and provisioning_password") {
		t.Fatalf("wrong password: %v, %v", prof, err)
	}
	if codes := srv.Requests(2); !slices.Equal(codes, []string{"401", "401"}) {
		t.Fatalf("server saw %v, want the challenge and the refused answer", codes)
	}
	p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile, User: "alice", Password: "d1gest-pw"}, dir)
	prof, err := p.Fetch(context.Background())
	if err != nil || prof == nil || !slices.Equal(prof.Recording.SRS, []string{"sip:srs@10.0.0.1;transport=tcp"}) {
		t.Fatalf("right password: %v, %v", prof, err)
	}
	if codes := srv.Requests(4); !slices.Equal(codes[2:], []string{"401", "200"}) {
		t.Fatalf("server saw %v, want a challenge then 200", codes)
	}
	// The next fetch answers the kept challenge at once (nc=2): one 304.
	if prof, err := p.Fetch(context.Background()); err != nil || prof != nil {
		t.Fatalf("unchanged: %v, %v", prof, err)
	}
	if codes := srv.Requests(5); !slices.Equal(codes[4:], []string{"304"}) {
		t.Fatalf("server saw %v, want 304 last", codes)
	}
	for _, name := range []string{profileFile, statusFile} {
		raw, _ := os.ReadFile(filepath.Join(dir, name))
		if strings.Contains(string(raw), "d1gest") || strings.Contains(string(raw), "guess") {
			t.Fatalf("a password is in %s", name)
		}
	}
}

// A redirect that leaves https is refused before anything is sent over
// plain HTTP; a redirect to another host is followed without the agent's
// credentials.
func TestRedirects(t *testing.T) {
	pki := siptest.NewPKI(t)
	cert, key, _ := pki.Leaf("prov")
	t.Run("to http", func(t *testing.T) {
		plain := provisiontest.Start(t, provisiontest.Options{CertFile: cert, KeyFile: key, Plain: true})
		plain.Put("alice.toml", profileA)
		srv := provisiontest.Start(t, provisiontest.Options{CertFile: cert, KeyFile: key, Redirect: "http://" + plain.PlainAddr})
		p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile}, t.TempDir())
		prof, err := p.Fetch(context.Background())
		if prof != nil || err == nil || !strings.Contains(err.Error(), "redirect refused") || !strings.Contains(err.Error(), "not https") {
			t.Fatalf("https to http: %v, %v", prof, err)
		}
		if codes := srv.Requests(1); !slices.Equal(codes, []string{"302"}) {
			t.Fatalf("the https server saw %v", codes)
		}
		if codes := plain.Requests(0); len(codes) != 0 {
			t.Fatalf("the plain server saw %v", codes)
		}
	})
	t.Run("to another host", func(t *testing.T) {
		other := provisiontest.Start(t, provisiontest.Options{CertFile: cert, KeyFile: key, User: "alice", Password: "s3cret-pw"})
		other.Put("alice.toml", profileA)
		srv := provisiontest.Start(t, provisiontest.Options{CertFile: cert, KeyFile: key, Redirect: "https://" + other.Addr})
		p := newProv(t, policy.Provisioning{URL: srv.URL(), CA: pki.CAFile, User: "alice", Password: "s3cret-pw"}, t.TempDir())
		prof, err := p.Fetch(context.Background())
		if prof != nil || err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("the other host was given the credentials: %v, %v", prof, err)
		}
		if codes := other.Requests(1); !slices.Equal(codes, []string{"401"}) {
			t.Fatalf("the other host saw %v, want one unauthenticated request", codes)
		}
	})
}

// The sample profile of the docs (shipped in /usr/share/doc/recphone) is
// a profile the phone accepts, and the packaged policy.toml a policy file
// it reads, so neither can rot.
func TestShippedSamplesParse(t *testing.T) {
	raw, err := os.ReadFile("../../../docs/provisioning/alice.toml")
	if err != nil {
		t.Fatal(err)
	}
	prof, err := policy.ParseProfile(raw, "alice.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(prof.Recording.SRS) != 2 || !slices.Contains(prof.LockedKeys(), "srs") {
		t.Fatalf("the sample: srs %v, locked %v", prof.Recording.SRS, prof.LockedKeys())
	}
	if _, err := policy.Resolve(prof, policy.Settings{}, "alice.toml"); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.LoadAdmin("../../../packaging/policy.toml", true); err != nil {
		t.Fatal(err)
	}
}

// The interval defaults to 5 minutes, and each wait is drawn within ±10%
// of it, spread over that whole range.
func TestIntervalDefaultAndJitter(t *testing.T) {
	p, err := New(Options{Settings: policy.Provisioning{URL: "https://p/x.toml"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if p.Interval() != 5*time.Minute {
		t.Fatalf("default interval %v", p.Interval())
	}
	lo, hi := p.Interval()*9/10, p.Interval()*11/10
	seen := map[time.Duration]bool{}
	least, most := hi, lo
	for range 2000 {
		d := jittered(p.Interval())
		if d < lo || d > hi {
			t.Fatalf("wait %v outside [%v, %v]", d, lo, hi)
		}
		seen[d] = true
		least, most = min(least, d), max(most, d)
	}
	// 2000 uniform draws over 60 s: the extremes are within 1 s of the
	// bounds but for a chance of about e^-33.
	if len(seen) < 1900 || least > lo+time.Second || most < hi-time.Second {
		t.Fatalf("%d distinct waits, from %v to %v: not spread over [%v, %v]", len(seen), least, most, lo, hi)
	}
	q, err := New(Options{Settings: policy.Provisioning{URL: "https://p/x.toml", Interval: "1s"}, Dir: t.TempDir()})
	if err != nil || q.Interval() != time.Second {
		t.Fatalf("interval 1s: %v, %v", q.Interval(), err)
	}
}

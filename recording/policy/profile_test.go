package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// A profile's keys replace the local file's, and both files' locks hold;
// the local file's provisioning keys stay.
func TestProfileOverLocalFile(t *testing.T) {
	local := adminFrom(t, `
provisioning_url = "https://prov.example/recphone/{user}.toml"
lock = ["*"]
[recording]
srs = ["sip:srs@10.0.0.1"]
allow_pause = true
`)
	prof, err := ParseProfile([]byte(`
lock = ["mode"]
[recording]
srs = ["sip:srs@10.0.0.2", "sip:srs@10.0.0.3"]
mode = "on-demand"
`), "https://prov.example/recphone/alice.toml")
	if err != nil {
		t.Fatal(err)
	}
	merged := prof.Over(local)
	if want := []string{"allow_pause", "mode", "srs"}; !slices.Equal(merged.Lock, want) {
		t.Errorf("locks %v, want %v", merged.Lock, want)
	}
	if merged.Provisioning.URL != local.Provisioning.URL {
		t.Errorf("provisioning_url lost: %q", merged.Provisioning.URL)
	}
	r, err := Resolve(merged, userFrom(t, "[recording]\nmode = \"always\"\nstreams = \"mixed\"\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.SRS, []string{"sip:srs@10.0.0.2", "sip:srs@10.0.0.3"}) || r.Mode != OnDemand || !r.AllowPause || r.Streams != Mixed {
		t.Errorf("resolved %+v", r.Policy)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "recording.mode") {
		t.Errorf("warnings %v, want the agent's locked mode", r.Warnings)
	}
	if got := prof.Over(nil); !slices.Equal(got.Lock, []string{"mode"}) {
		t.Errorf("profile alone locks %v", got.Lock)
	}
}

func TestProfileCannotMoveProvisioning(t *testing.T) {
	_, err := ParseProfile([]byte(`provisioning_url = "https://evil.example/x.toml"`), "p")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "provisioning") {
		t.Fatalf("got %v", err)
	}
	if _, err := ParseProfile([]byte("[recording]\nsrs = [\"sip:a@b\"]\nbogus = 1\n"), "p"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown key: %v", err)
	}
}

// FuzzParseProfile: whatever a server sends, parsing returns a profile or
// an ErrInvalid error, and a profile it accepts merges and resolves
// without panicking.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte("lock = [\"*\"]\n[recording]\nsrs = [\"sip:srs@10.0.0.2\"]\nmode = \"always\"\n"))
	f.Add([]byte("lock = [\"srs\"]\n[recording]\nparallel = 2\nfailover_on = [\"5xx\"]\n"))
	f.Add([]byte("provisioning_url = \"https://x\"\n"))
	f.Add([]byte("[recording\nsrs = "))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := ParseProfile(raw, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if p.Provisioning.Set() {
			t.Fatal("a profile with provisioning keys was accepted")
		}
		for _, k := range p.LockedKeys() {
			if !validKey(k) {
				t.Fatalf("locked unknown key %q", k)
			}
		}
		_, _ = Resolve(p.Over(nil), Settings{}, "fuzz")
	})
}

package callengine

import (
	"testing"

	"github.com/recphone/recphone/callengine/sdp"
)

// Both spellings of RFC 7866's preferences are read, at media or session
// level, the media level first; anything else is no preference.
func TestRecordPrefOf(t *testing.T) {
	for body, want := range map[string]RecordPref{
		"a=recordpref:never\r\n":        PrefNever,
		"a=recordpref:off\r\n":          PrefNever,
		"a=recordpref:ON\r\n":           PrefAlways,
		"a=recordpref:always\r\n":       PrefAlways,
		"a=recordpref:pause\r\n":        PrefPause,
		"a=recordpref:nopreference\r\n": PrefNoPreference,
		"a=recordpref:sometimes\r\n":    PrefNone,
		"a=recordpref:\r\n":             PrefNone,
		"a=record:on\r\n":               PrefNone,
		"a=recordpref:pause\r\na=x\r\n": PrefPause,
	} {
		for _, level := range []string{"session", "media"} {
			head := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
			media := "m=audio 4000 RTP/AVP 0\r\n"
			doc := head + body + media
			if level == "media" {
				doc = head + media + body
			}
			s, err := sdp.Parse([]byte(doc))
			if err != nil {
				t.Fatalf("%q: %v", doc, err)
			}
			if got, _ := recordPrefOf(s); got != want {
				t.Errorf("%s level %q: %q, want %q", level, body, got, want)
			}
		}
	}
	s, _ := sdp.Parse([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=recordpref:never\r\n" +
		"m=audio 4000 RTP/AVP 0\r\na=recordpref:pause\r\n"))
	if got, _ := recordPrefOf(s); got != PrefPause {
		t.Errorf("media level does not win: %q", got)
	}
}

package observe

import "testing"

func TestAddEmitRemove(t *testing.T) {
	var l List[int]
	var got []string
	removeA := l.Add(func(e int) { got = append(got, "a") })
	l.Add(func(e int) { got = append(got, "b") })
	l.Emit(1)
	removeA()
	removeA() // idempotent
	l.Emit(2)
	if want := "a b b"; join(got) != want {
		t.Fatalf("calls %q, want %q", join(got), want)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

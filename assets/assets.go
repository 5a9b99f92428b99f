// Package assets holds the files recphone ships inside its binary: the
// application icon (also used by `fyne package`). It has no Fyne import so
// packages that only need the bytes build fast.
package assets

import _ "embed"

//go:embed icon.png
var icon []byte

// Icon is the application icon as PNG bytes: a red recording dot in a
// white ring. The slice is shared; do not modify it.
func Icon() []byte { return icon }

//go:build race

package main

// raceEnabled: the test binary runs under the race detector, so the app
// the end-to-end tests start is built with it too (it reuses the test's
// compiled packages and checks the real app's goroutines).
const raceEnabled = true

package portaudio

import (
	"fmt"
	"sync"

	pa "github.com/gordonklaus/portaudio"
)

// library is the process-wide PortAudio handle. PortAudio keeps its host
// API and device tables in C globals, and the Go binding adds unguarded
// caches of its own, so this one value is the package's only shared state:
// it counts Initialize/Terminate pairs and serialises every call into the
// binding except the stream callbacks.
//
// Devices hold a reference only while a stream is open (Run, Ring). When
// the count drops to zero PortAudio is terminated, and the next
// initialisation enumerates devices afresh: that is how a headset plugged
// in between calls becomes visible, since PortAudio v19 cannot rescan
// while initialised.
type library struct {
	mu   sync.Mutex
	refs int
	// skippedIDs records that the binding's stream ids were moved past
	// the range Go's pointer checker rejects (see skipLowStreamIDs).
	skippedIDs bool
}

var lib library

// acquire initialises PortAudio (or adds a reference).
func (l *library) acquire() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := pa.Initialize(); err != nil {
		return fmt.Errorf("portaudio: initialize: %w", err)
	}
	l.refs++
	if !l.skippedIDs {
		skipLowStreamIDs()
		l.skippedIDs = true
	}
	return nil
}

// skipLowStreamIDs works around the binding handing its stream id (a
// counter) to PortAudio as a C pointer. Under -race, Go's checkptr rejects
// any pointer value from 1 to 4095, so the second stream a process opens
// crashes it. Failed OpenStream calls (no callback given) consume an id
// each without touching PortAudio, which moves the counter past the
// rejected range; it is done once per process, before the first stream.
func skipLowStreamIDs() {
	for range 4096 {
		_, _ = pa.OpenStream(pa.StreamParameters{})
	}
}

// release drops a reference; the last one terminates PortAudio.
func (l *library) release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs == 0 {
		return nil
	}
	l.refs--
	if err := pa.Terminate(); err != nil {
		return fmt.Errorf("portaudio: terminate: %w", err)
	}
	return nil
}

// do runs f with the binding to itself.
func (l *library) do(f func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return f()
}

// Package observe keeps a list of observers that is read on every event
// and changed rarely: the engine's call events and the recorder's
// recording events both go through one.
package observe

import "sync/atomic"

// List is a set of functions called with every event, in the order they
// were added. Emitting takes no lock; adding and removing copy the list.
// The zero value is an empty list.
type List[E any] struct {
	fns atomic.Pointer[[]*func(E)]
}

// Add subscribes fn; the returned function unsubscribes it.
func (l *List[E]) Add(fn func(E)) (remove func()) {
	p := &fn
	l.update(func(cur []*func(E)) []*func(E) { return append(cur, p) })
	return func() {
		l.update(func(cur []*func(E)) []*func(E) {
			var next []*func(E)
			for _, q := range cur {
				if q != p {
					next = append(next, q)
				}
			}
			return next
		})
	}
}

func (l *List[E]) update(change func([]*func(E)) []*func(E)) {
	for {
		old := l.fns.Load()
		var cur []*func(E)
		if old != nil {
			cur = append(cur, *old...)
		}
		next := change(cur)
		if l.fns.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Emit calls every subscribed function with e, synchronously.
func (l *List[E]) Emit(e E) {
	if fns := l.fns.Load(); fns != nil {
		for _, fn := range *fns {
			(*fn)(e)
		}
	}
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// config is the parsed command line.
type config struct {
	listen, dir              string
	strict, verbose          bool
	tlsAddr, tlsCert, tlsKey string
	tlsCA                    string // invite over TLS: the CA the SRC's certificate must chain to
	mediaIP                  string
	codecs                   string // comma-separated codecs recorded
	invite                   string // target URI; empty: wait for SRCs
	offerless                bool
	streams                  int
	transport                string
	duration, requestAfter   time.Duration
	pauseAfter, pauseFor     time.Duration
}

func parseArgs(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("recphone-srs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:5070", "SIP address for UDP and TCP (port 0 picks one)")
	fs.StringVar(&c.dir, "dir", "recordings", "directory for recordings, one sub-directory per RS")
	fs.BoolVar(&c.strict, "strict", false, "refuse non-conforming INVITEs with a 4xx naming the finding (notes never refuse)")
	fs.StringVar(&c.tlsAddr, "tls", "", "SIP over TLS address (needs --tls-cert and --tls-key)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate for TLS")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM key for TLS")
	fs.StringVar(&c.mediaIP, "media-ip", "", "address to put in SDP when listening on a wildcard")
	fs.StringVar(&c.codecs, "codecs", "opus,G722,PCMU,PCMA", "codecs the SRS takes, comma-separated (PCMU,PCMA: a G.711-only recorder)")
	fs.BoolVar(&c.verbose, "v", false, "debug logging")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: recphone-srs [flags]                  record what SRCs send\n"+
			"       recphone-srs [flags] invite [invite flags] sip:agent@host:port\n"+
			"                                              start an RS toward an SRC\n"+
			"SIGUSR1 asks every live RS for a full metadata snapshot. See docs/recphone-srs.md.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if (c.tlsCert != "" || c.tlsKey != "" || c.tlsAddr != "") && (c.tlsCert == "" || c.tlsKey == "" || c.tlsAddr == "") {
		return nil, errors.New("TLS needs --tls, --tls-cert and --tls-key")
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return c, nil
	}
	if rest[0] != "invite" {
		return nil, fmt.Errorf("unknown command %q (want: invite)", rest[0])
	}
	inv := flag.NewFlagSet("invite", flag.ContinueOnError)
	inv.SetOutput(stderr)
	inv.BoolVar(&c.offerless, "offerless", false, "send no SDP: the SRC offers in its 200 OK")
	inv.IntVar(&c.streams, "streams", 2, "recvonly streams to offer")
	inv.StringVar(&c.transport, "transport", "udp", "udp, tcp or tls")
	inv.StringVar(&c.tlsCA, "tls-ca", "", "tls: PEM CA the SRC's certificate must chain to (default: the system's roots); --tls-cert/--tls-key are shown as the SRS's client certificate")
	inv.DurationVar(&c.duration, "duration", 0, "hang up after this long (0: when the SRC ends or on signal)")
	inv.DurationVar(&c.requestAfter, "request-metadata-after", 0, "send an rs-metadata-request this long after the answer")
	inv.DurationVar(&c.pauseAfter, "pause-after", 0, "pause the RS (re-INVITE a=inactive) this long after the answer")
	inv.DurationVar(&c.pauseFor, "pause-for", 0, "resume (re-INVITE a=recvonly) this long after the pause (0: stay paused)")
	if err := inv.Parse(rest[1:]); err != nil {
		return nil, err
	}
	if c.pauseFor > 0 && c.pauseAfter <= 0 {
		return nil, errors.New("--pause-for needs --pause-after")
	}
	if inv.NArg() != 1 {
		return nil, errors.New("invite needs exactly one target URI, e.g. sip:agent@192.0.2.10:5060")
	}
	c.invite = inv.Arg(0)
	if c.transport == "tls" && c.tlsCert == "" {
		return nil, errors.New("invite --transport tls needs --tls, --tls-cert and --tls-key: the SRC asks for the SRS's certificate")
	}
	return c, nil
}

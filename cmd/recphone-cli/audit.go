package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/recphone/recphone/cmd/internal/config"
	"github.com/recphone/recphone/recording/audit"
	"github.com/recphone/recphone/recording/policy"
)

const auditUsage = `usage:
  recphone-cli audit verify [--db FILE | --config FILE [--policy FILE]] [--head HASH]
  recphone-cli audit export [--db FILE | --config FILE [--policy FILE]] [--since T] [--until T] [--format csv|json] [--summary]
T is RFC 3339 (2026-03-01T09:00:00Z) or a date (2026-03-01, UTC; as --until the whole day).`

// runAudit is `recphone-cli audit ...`: it checks or exports the audit
// trail, opened read-only. verify exits 0 when the trail is intact and 1
// naming every broken row; 2 is a usage error or a trail that cannot be
// read at all.
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "export") {
		fmt.Fprintln(stderr, auditUsage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("recphone-cli audit "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "audit trail database (default: the policy's audit key, else the agent's own)")
	cfgPath := fs.String("config", "", "configuration file whose [recording] audit key names the database")
	policyPath := fs.String("policy", "", "recording policy file (default "+policy.DefaultPath+" when it exists)")
	head := fs.String("head", "", "verify: a head hash logged earlier, which must still be in the chain")
	since := fs.String("since", "", "export: rows at or after this time")
	until := fs.String("until", "", "export: rows before this time")
	format := fs.String("format", "csv", "export: csv or json")
	summary := fs.Bool("summary", false, "export --format csv: the per-call recording summaries instead of the rows")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "recphone-cli audit: unexpected argument %q\n%s\n", fs.Arg(0), auditUsage)
		return 2
	}
	path, err := auditPath(*db, *cfgPath, *policyPath)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli audit: %v\n", err)
		return 2
	}
	d, err := audit.OpenReadOnly(ctx, path)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli audit: %v\n", err)
		return 2
	}
	defer d.Close()
	if cmd == "verify" {
		return verifyAudit(ctx, d, *head, stdout, stderr)
	}
	lo, err := audit.ParseBound(*since, false)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli audit: --since: %v\n", err)
		return 2
	}
	hi, err := audit.ParseBound(*until, true)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli audit: --until: %v\n", err)
		return 2
	}
	f := audit.Format(*format)
	switch {
	case f != audit.CSV && f != audit.JSON:
		fmt.Fprintf(stderr, "recphone-cli audit: --format %q: want csv or json\n", *format)
		return 2
	case *summary && f == audit.JSON:
		fmt.Fprintln(stderr, "recphone-cli audit: --summary is for csv; the json export always holds the summaries (\"calls\")")
		return 2
	case *summary:
		f = audit.SummaryCSV
	}
	if err := d.Export(ctx, stdout, lo, hi, f); err != nil {
		fmt.Fprintf(stderr, "recphone-cli audit: %v\n", err)
		return 1
	}
	return 0
}

func verifyAudit(ctx context.Context, d *audit.DB, head string, stdout, stderr io.Writer) int {
	rep, err := d.Verify(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "recphone-cli audit: %v\n", err)
		return 2
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, p)
	}
	if head != "" {
		ok, err := d.HasHash(ctx, head)
		if err != nil {
			fmt.Fprintf(stderr, "recphone-cli audit: %v\n", err)
			return 2
		}
		if !ok {
			fmt.Fprintf(stdout, "head %s: no row has this hash (the chain was rewritten or cut)\n", head)
			rep.Problems = append(rep.Problems, audit.Problem{Reason: "logged head missing"})
		}
	}
	if !rep.OK() {
		fmt.Fprintf(stdout, "%s: BROKEN: %d of %d rows checked have problems\n", d.Path(), len(rep.Problems), rep.Rows)
		return 1
	}
	fmt.Fprintf(stdout, "%s: intact: %d rows, head %s\n", d.Path(), rep.Rows, rep.Head.Hash)
	return 0
}

// auditPath is the database to open: --db, else the audit key of the
// policy in force for the configuration (or for none), else the agent's
// own default.
func auditPath(db, cfgPath, policyPath string) (string, error) {
	if db != "" {
		return db, nil
	}
	file := &config.File{}
	if cfgPath != "" {
		var err error
		if file, err = config.Load(cfgPath); err != nil {
			return "", err
		}
	}
	path, required := policyPath, policyPath != ""
	if !required {
		path = policy.DefaultPath
	}
	pol, err := file.RecordingPolicy(path, required)
	if err != nil {
		return "", err
	}
	if pol.Audit != "" {
		return file.Path(pol.Audit), nil
	}
	p, err := config.DefaultAuditPath()
	if err != nil {
		return "", errors.New("no --db and no audit key: " + err.Error())
	}
	return p, nil
}

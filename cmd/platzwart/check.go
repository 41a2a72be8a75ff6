package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/check"
	"github.com/platzwart/platzwart/reconciler/dns"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// checkFlags are the flags of platzwart check.
type checkFlags struct {
	out     printer
	timeout time.Duration
	caFile  string
	address string
	resolve []string
	// resolver is the DNS server the records are checked at (host:port).
	resolver string
}

func newCheckCommand(g *globalFlags) *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check [dir]",
		Short: "Check a deployed workplace through its public URLs: TLS, single sign-on, every app",
		Long: `check tests the workplaces of dir (default .) as their people reach them, from this
machine: every public host presents a certificate valid under the workplace's CA; the
identity provider's discovery names the right issuer; each app's OIDC client exists
with its secret, redirect and logout URIs; each app answers the way a working
installation does (Matrix login flows offering single sign-on, Nextcloud installed
with its OIDC provider, Collabora's discovery, Jitsi asking for authentication, ...).

The CA and the client secrets are read from the workplace's namespace with the
kubeconfig (--kubeconfig, --context, -n); --ca-file gives the CA by hand. --address
sends every host to one address (minikube's IP, an ingress you reach by port-forward)
and --resolve one host, when DNS does not point there yet.

Each probe is bounded by --timeout; progress goes to stderr. The exit status is
non-zero when a check fails; each failure says why and what to do.`,
		Example: `  platzwart check examples/workplace --address "$(minikube ip)"
  platzwart check . -o json --resolve id.example.org=10.0.0.5 --ca-file ca.crt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd, args, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.out.format, "output", "o", "table", "output format: "+validFormats)
	fl.DurationVar(&f.timeout, "timeout", check.DefaultTimeout, "bound of each probe (connection, TLS handshake and answer)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file with the CA to trust instead of the workplace's CA Secret")
	fl.StringVar(&f.address, "address", "", "dial every host of the workplace at this address, ip or ip:port (port default 443); an external identity provider is dialled where it resolves")
	fl.StringArrayVar(&f.resolve, "resolve", nil, "dial one host at an address, host=ip or host=ip:port (repeatable)")
	fl.StringVar(&f.resolver, "resolver", "", "DNS server (host:port) to compare the workplace's records with (default: the system's; with --address or --resolve, DNS is checked only when this is set)")
	return cmd
}

func runCheck(cmd *cobra.Command, args []string, g *globalFlags, f *checkFlags) error {
	if f.out.format != "table" && f.out.format != "json" && f.out.format != "yaml" {
		return fmt.Errorf("--output: unknown format %q (known: %s)", f.out.format, validFormats)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout: must be positive, got %s", f.timeout)
	}
	resolve, err := parseResolve(f.resolve)
	if err != nil {
		return err
	}
	var ca []byte
	if f.caFile != "" {
		if ca, err = os.ReadFile(f.caFile); err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
	}
	repo, err := loadRepo(dirArg(args), g)
	if err != nil {
		return err
	}
	var plans []*plan.Plan
	var errs []error
	for _, w := range repo.Workplaces {
		p, err := plan.Build(w, repo.Catalog)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plans = append(plans, p)
	}
	if len(errs) > 0 {
		return joinErrors(errs)
	}
	opts := check.Options{Timeout: f.timeout, CA: ca, Address: f.address, Resolve: resolve}
	var reader client.Reader // the cluster, for the secrets and the DNS records
	if c, err := connect(g); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "no cluster access (%v): the CA and client secrets cannot be read\n", err)
	} else {
		reader = c.Client
		opts.Secrets = check.KubeSecrets{Reader: reader}
	}
	opts.Progress = checkProgress(cmd.ErrOrStderr())

	var reports []*check.Report
	failed := 0
	for _, p := range plans {
		fmt.Fprintf(cmd.ErrOrStderr(), "checking workplace %s/%s\n", p.Namespace, p.Workplace)
		if opts.DNS, err = dnsCheck(cmd.Context(), p, repo.Catalog, reader, f); err != nil {
			return err
		}
		rep, err := check.Run(cmd.Context(), p, repo.Catalog, opts)
		if err != nil {
			return err
		}
		reports = append(reports, rep)
		failed += len(rep.Failed())
	}
	if err := printReports(cmd.OutOrStdout(), f.out, reports); err != nil {
		return err
	}
	if err := cmd.Context().Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

// parseResolve reads host=ip[:port] overrides.
func parseResolve(list []string) (map[string]string, error) {
	out := map[string]string{}
	for _, r := range list {
		host, addr, ok := strings.Cut(r, "=")
		if !ok || host == "" || addr == "" {
			return nil, fmt.Errorf("--resolve %q: want host=ip or host=ip:port", r)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "443")
		}
		out[host] = addr
	}
	return out, nil
}

// checkProgress prints one line per finished check on w.
func checkProgress(w io.Writer) func(check.Result) {
	var mu sync.Mutex
	start := time.Now()
	return func(r check.Result) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "[%6.1fs] %-4s %-17s %s\n", time.Since(start).Seconds(), r.Status, r.Name, r.Target)
	}
}

// printReports writes the reports as a table (every check, then each failure with its
// fix) or as JSON / YAML.
func printReports(w io.Writer, out printer, reports []*check.Report) error {
	if out.format != "table" {
		return out.print(w, reports, nil)
	}
	return out.print(w, reports, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "WORKPLACE\tCHECK\tTARGET\tSTATUS\tREASON\tMESSAGE")
		for _, rep := range reports {
			for _, r := range rep.Checks {
				reason := string(r.Reason)
				if reason == "" {
					reason = "-"
				}
				fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\t%s\t%s\n", rep.Namespace, rep.Workplace, r.Name, r.Target, r.Status, reason, r.Message)
			}
		}
		_ = tw.Flush()
		for _, rep := range reports {
			for _, r := range rep.Failed() {
				fmt.Fprintf(w, "\n%s %s: %s\n  fix: %s\n", r.Name, r.Target, r.Message, r.Fix)
			}
		}
	})
}

// dnsCheck is what the DNS checks of p compare: its records (addresses and DKIM keys
// from the cluster when reader is set) at --resolver or the system's resolver. With
// --address or --resolve and no --resolver, DNS is not expected to point at the
// workplace yet: the checks are skipped, saying so.
func dnsCheck(ctx context.Context, p *plan.Plan, cat *catalog.Catalog, reader client.Reader, f *checkFlags) (*check.DNSOptions, error) {
	if f.resolver == "" && (f.address != "" || len(f.resolve) > 0) {
		return &check.DNSOptions{Skip: "--address or --resolve says DNS does not point at the workplace yet; pass --resolver to check DNS anyway"}, nil
	}
	resolver := f.resolver
	if resolver == "" {
		var err error
		if resolver, err = check.SystemResolver(); err != nil {
			return &check.DNSOptions{Skip: fmt.Sprintf("%v; pass --resolver", err)}, nil
		}
	} else if _, _, err := net.SplitHostPort(resolver); err != nil {
		return nil, fmt.Errorf("--resolver %q: want host:port", resolver)
	}
	recs, err := dns.Records(ctx, p, cat, dns.Options{Reader: reader})
	if err != nil {
		return nil, err
	}
	return &check.DNSOptions{Records: recs, Resolver: resolver}, nil
}

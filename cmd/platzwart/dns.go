package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/dns"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// dnsZone is one workplace's records, as `platzwart dns -o json|yaml` prints them.
type dnsZone struct {
	Workplace string       `json:"workplace"`
	Namespace string       `json:"namespace"`
	Domain    string       `json:"domain"`
	Records   []dns.Record `json:"records"`
}

func newDNSCommand(g *globalFlags) *cobra.Command {
	var format, address string
	cmd := &cobra.Command{
		Use:   "dns [dir | workplace]",
		Short: "List the DNS records a workplace needs, as a zone-file snippet, JSON, YAML or a table",
		Long: `dns lists the records the workplaces of dir (default .) need in their DNS zones: an
address record (A, AAAA, or a CNAME to a load balancer's name) for every public host
of every selected component, and the records the components declare (MX, SPF, DKIM
with the public key of the generated private key, DMARC, SRV, autoconfig, ...).

Addresses come from the cluster (--kubeconfig, --context): the LoadBalancer address
of the ingress controller's Service in routing.controllerNamespace, or the Gateway's
status.addresses in Gateway mode; --address gives it by hand. A host reached at a
Service of its own (SMTP, IMAP) gets that Service's LoadBalancer address; a NodePort
Service gets the routing's address with a note, since DNS cannot carry ports. DKIM
keys are read from the workplace's Secrets; only the public key is printed.

Without the cluster, records that need it are listed with a <placeholder> and a note
saying why. With an argument that is not a directory, dns reads the Workplace of that
name from the cluster (-n) and plans it with the built-in catalog.

-o zone (default) prints a snippet relative to the workplace's domain ($ORIGIN), with
TTLs; TXT texts longer than 255 bytes are split into several strings.`,
		Example: `  platzwart dns examples/workplace --address 192.168.49.2
  platzwart dns . -o json
  platzwart dns demo -n demo`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "zone", "table", "json", "yaml":
			default:
				return fmt.Errorf("--output: unknown format %q (known: zone|%s)", format, validFormats)
			}
			zones, err := dnsZones(cmd.Context(), cmd.ErrOrStderr(), dirArg(args), address, g)
			if err != nil {
				return err
			}
			return printZones(cmd.OutOrStdout(), format, zones)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "zone", "output format: zone|"+validFormats)
	cmd.Flags().StringVar(&address, "address", "", "the routing's external address (IP, or a host name for CNAMEs) instead of the cluster's")
	return cmd
}

// dnsZones plans the workplaces of arg (a directory, or a Workplace in the cluster)
// and lists their records.
func dnsZones(ctx context.Context, stderr io.Writer, arg, address string, g *globalFlags) ([]dnsZone, error) {
	var plans []*plan.Plan
	var cat *catalog.Catalog
	var cluster *kube.Cluster
	if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
		repo, err := loadRepo(arg, g)
		if err != nil {
			return nil, err
		}
		cat = repo.Catalog
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
			return nil, joinErrors(errs)
		}
		cluster = reachableCluster(stderr, g)
	} else {
		c, ns, err := connectNamespace(g)
		if err != nil {
			return nil, fmt.Errorf("%s is not a directory, so it names a Workplace in the cluster: %w", arg, err)
		}
		p, builtin, err := planFromCluster(ctx, c, ns, arg)
		if err != nil {
			return nil, err
		}
		plans, cat, cluster = []*plan.Plan{p}, builtin, c
	}
	opts := dns.Options{Address: address}
	if cluster != nil {
		opts.Reader = cluster.Client
	}
	var zones []dnsZone
	for _, p := range plans {
		recs, err := dns.Records(ctx, p, cat, opts)
		if err != nil {
			return nil, err
		}
		zones = append(zones, dnsZone{Workplace: p.Workplace, Namespace: p.Namespace, Domain: p.Domain, Records: recs})
	}
	return zones, nil
}

// reachableCluster connects when the kubeconfig names a cluster that answers; nil
// (with a note on stderr) otherwise: the records that need it then say so.
func reachableCluster(stderr io.Writer, g *globalFlags) *kube.Cluster {
	c, err := connect(g)
	if err == nil {
		_, err = c.Clientset.Discovery().ServerVersion()
	}
	if err != nil {
		fmt.Fprintf(stderr, "no cluster access (%v): addresses and DKIM keys are placeholders\n", err)
		return nil
	}
	return c
}

// planFromCluster plans the Workplace resource name of namespace ns with the
// built-in catalog.
func planFromCluster(ctx context.Context, c *kube.Cluster, ns, name string) (*plan.Plan, *catalog.Catalog, error) {
	wps, err := workplaceResources(ctx, c, ns, name)
	if err != nil {
		return nil, nil, err
	}
	if len(wps) == 0 {
		return nil, nil, fmt.Errorf("%q is neither a directory nor a Workplace in namespace %s", name, ns)
	}
	cat, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
	if err != nil {
		return nil, nil, err
	}
	w := &load.Workplace{Workplace: *wps[0].DeepCopy(), File: fmt.Sprintf("Workplace %s/%s", ns, name)}
	if err := load.Validate(w); err != nil {
		return nil, nil, err
	}
	p, err := plan.Build(w, cat)
	if err != nil {
		return nil, nil, err
	}
	return p, cat, nil
}

// printZones writes the records of every workplace in the chosen format.
func printZones(w io.Writer, format string, zones []dnsZone) error {
	switch format {
	case "zone":
		for i, z := range zones {
			if i > 0 {
				fmt.Fprintln(w)
			}
			if err := dns.WriteZone(w, z.Namespace+"/"+z.Workplace, z.Domain, z.Records); err != nil {
				return err
			}
		}
		return nil
	case "json", "yaml":
		return printer{format: format}.print(w, zones, nil)
	}
	return printer{format: "table"}.print(w, zones, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "WORKPLACE\tNAME\tTYPE\tTTL\tVALUE\tCOMPONENT\tNOTE")
		for _, z := range zones {
			for _, r := range z.Records {
				value := r.Value
				switch r.Type {
				case dns.MX:
					value = fmt.Sprintf("%d %s", r.Priority, value)
				case dns.SRV:
					value = fmt.Sprintf("%d %d %d %s", r.Priority, r.Weight, r.Port, value)
				}
				if !r.Known() {
					value = "<unknown>"
				}
				if len(value) > 60 {
					value = value[:57] + "..."
				}
				note := strings.TrimSpace(strings.Join([]string{r.Note, r.Unknown}, " "))
				fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%d\t%s\t%s\t%s\n", z.Namespace, z.Workplace, r.FQDN, r.Type, r.TTL, value, r.Component, orDash(note))
			}
		}
	})
}

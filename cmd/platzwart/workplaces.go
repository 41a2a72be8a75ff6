package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/release"
)

// statusOutput is what `platzwart status -o yaml|json` prints.
type statusOutput struct {
	Workplaces []v1alpha1.Workplace `json:"workplaces,omitempty"`
	Components []release.State      `json:"components"`
}

// workplaceResources reads the Workplace resources of a namespace (those the
// controller reconciles); none when the CRD is not installed (CLI-only use).
func workplaceResources(ctx context.Context, c *kube.Cluster, ns, name string) ([]v1alpha1.Workplace, error) {
	if _, err := c.Mapper.RESTMapping(v1alpha1.GroupVersion.WithKind(v1alpha1.WorkplaceKind).GroupKind(), v1alpha1.GroupVersion.Version); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, err
	}
	cl, err := client.New(c.Config, client.Options{Scheme: schemeWithAPI(), Mapper: c.Mapper})
	if err != nil {
		return nil, err
	}
	var list v1alpha1.WorkplaceList
	if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing Workplaces in %s: %w", ns, err)
	}
	var out []v1alpha1.Workplace
	for _, w := range list.Items {
		if name == "" || w.Name == name {
			out = append(out, w)
		}
	}
	return out, nil
}

// printWorkplaces prints the Workplace resources with their delivery metrics.
func printWorkplaces(w io.Writer, wps []v1alpha1.Workplace) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKPLACE\tREADY\tREVISION\tDEPLOYS/DAY\tLEAD TIME\tFAILURE RATE\tTIME TO RESTORE\tMESSAGE")
	for _, wp := range wps {
		ready, msg := "Unknown", ""
		if c := meta.FindStatusCondition(wp.Status.Conditions, "Ready"); c != nil {
			ready, msg = string(c.Status), c.Message
		}
		if c := meta.FindStatusCondition(wp.Status.Conditions, "SourceReady"); c != nil && c.Status == "False" {
			msg += " (source: " + c.Message + ")"
		}
		freq, lead, cfr, ttr := "-", "-", "-", "-"
		if d := wp.Status.Delivery; d != nil {
			freq, cfr = d.DeploymentsPerDay, d.ChangeFailureRate
			if d.LeadTime != nil {
				lead = d.LeadTime.Duration.String()
			}
			if d.TimeToRestore != nil {
				ttr = d.TimeToRestore.Duration.String()
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", wp.Name, ready, shortRevision(wp.Status.LastAppliedRevision), freq, lead, cfr, ttr, msg)
	}
	return tw.Flush()
}

// shortRevision shortens "main@sha1:<40 hex>" to "main@sha1:<12 hex>".
func shortRevision(r string) string {
	if len(r) > 12 && len(r) >= 40 {
		return r[:len(r)-28]
	}
	if r == "" {
		return "-"
	}
	return r
}

// schemeWithAPI returns a scheme with client-go's types and the Workplace API.
func schemeWithAPI() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

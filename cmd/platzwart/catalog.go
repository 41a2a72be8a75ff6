package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/load"
)

// catalogEntry is one component as `platzwart catalog` shows it.
type catalogEntry struct {
	Capability  string   `json:"capability"`
	Component   string   `json:"component"`
	Licence     string   `json:"licence"`
	URL         string   `json:"url"`
	Chart       string   `json:"chart,omitempty"`
	Consumes    []string `json:"consumes,omitempty"`
	Optional    []string `json:"optional,omitempty"`
	Images      []string `json:"images,omitempty"`
	Description string   `json:"description,omitempty"`
	Source      string   `json:"source"`
}

func newCatalogCommand() *cobra.Command {
	var out printer
	var dir string
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "List the components by capability, with licence, images and what each consumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cat *catalog.Catalog
			var err error
			if dir != "" {
				var repo *load.Repository
				repo, err = load.Dir(dir, platzwart.Builtin(), "")
				if repo != nil {
					cat = repo.Catalog
				}
			} else {
				cat, err = catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
			}
			if err != nil {
				return err
			}
			entries := catalogEntries(cat)
			return out.print(cmd.OutOrStdout(), entries, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "CAPABILITY\tCOMPONENT\tLICENCE\tCONSUMES\tIMAGES")
				for _, e := range entries {
					consumes := strings.Join(e.Consumes, ",")
					if len(e.Optional) > 0 {
						consumes += " (optional: " + strings.Join(e.Optional, ",") + ")"
					}
					if consumes == "" {
						consumes = "-"
					}
					images := strings.Join(e.Images, ",")
					if images == "" {
						images = "- (no release: wiring only)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Capability, e.Component, e.Licence, consumes, images)
				}
				tw.Flush()
				fmt.Fprintln(tw)
				for _, e := range entries {
					fmt.Fprintf(tw, "%s: %s\n    %s\n", e.Component, e.Description, e.URL)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&out.format, "output", "o", "table", "output format: "+validFormats)
	cmd.Flags().StringVar(&dir, "dir", "", "also list the components of the workplace repository in this directory")
	return cmd
}

// capabilityRank orders the listing: the built-in applications in the order people
// think of a workplace, then any a repository declares (alphabetically), then the
// infrastructure.
func capabilityRank(name string) int {
	for i, n := range []string{contract.Identity, contract.Chat, contract.Video, contract.Files, contract.Office, contract.Mail, contract.Portal} {
		if n == name {
			return i
		}
	}
	switch name {
	case contract.Postgres, contract.Redis:
		return 101
	}
	return 100
}

// catalogEntries lists the components by capability, then name.
func catalogEntries(cat *catalog.Catalog) []catalogEntry {
	entries := make([]catalogEntry, 0, len(cat.Components))
	for _, c := range cat.Components {
		entries = append(entries, catalogEntry{
			Capability:  c.Spec.Capability,
			Component:   c.Metadata.Name,
			Licence:     c.Spec.Licence,
			URL:         c.Spec.URL,
			Chart:       c.Spec.Chart,
			Consumes:    c.Spec.Consumes,
			Optional:    c.Spec.Optional,
			Images:      c.Spec.Images,
			Description: strings.TrimSpace(c.Spec.Description),
			Source:      c.File,
		})
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if ra, rb := capabilityRank(a.Capability), capabilityRank(b.Capability); ra != rb {
			return ra < rb
		}
		if a.Capability != b.Capability {
			return a.Capability < b.Capability
		}
		return a.Component < b.Component
	})
	return entries
}

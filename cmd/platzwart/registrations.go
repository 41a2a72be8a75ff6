package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// oidcRegistration is a client the operator registers at an external identity
// provider: platzwart writes nothing there.
type oidcRegistration struct {
	Workplace string `json:"workplace"`
	Provider  string `json:"provider"`
	IssuerURL string `json:"issuerURL"`
	plan.OIDCClient
}

// planOutput is `platzwart plan -o json|yaml`.
type planOutput struct {
	Releases []planEntry `json:"releases"`
	// OIDCClients are the clients to register at an external identity provider.
	OIDCClients []oidcRegistration `json:"oidcClients,omitempty"`
}

// registrations lists the clients of p's external identity provider (none for a
// provider platzwart configures itself).
func registrations(p *plan.Plan) []oidcRegistration {
	id := p.Identity
	if id == nil || !id.External {
		return nil
	}
	out := make([]oidcRegistration, 0, len(id.Clients))
	for _, c := range id.Clients {
		out = append(out, oidcRegistration{Workplace: p.Namespace + "/" + p.Workplace, Provider: id.Component, IssuerURL: id.IssuerURL, OIDCClient: c})
	}
	return out
}

// printRegistrations writes the clients to register, one table per issuer.
func printRegistrations(w io.Writer, regs []oidcRegistration) error {
	issuer := ""
	var tw *tabwriter.Writer
	for _, r := range regs {
		if r.IssuerURL != issuer {
			if tw != nil {
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			issuer = r.IssuerURL
			fmt.Fprintf(w, "\nregister at %s (identity %s of workplace %s; platzwart registers nothing there):\n", r.IssuerURL, r.Provider, r.Workplace)
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COMPONENT\tCLIENT ID\tSECRET\tREDIRECT URIS\tPOST-LOGOUT REDIRECT URIS\tBACK-CHANNEL LOGOUT URI")
		}
		secret := "public client"
		if r.Secret != nil {
			secret = "Secret " + r.Secret.Name + " key " + r.Secret.Key
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Component, r.ClientID, secret, orDash(strings.Join(r.RedirectURIs, " ")),
			orDash(strings.Join(r.PostLogoutRedirectURIs, " ")), orDash(r.BackchannelLogoutURI))
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

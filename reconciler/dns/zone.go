package dns

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// maxTXTString is the longest character-string of a TXT record (RFC 1035 3.3).
const maxTXTString = 255

// WriteZone writes recs as a zone-file snippet relative to domain ($ORIGIN), with
// TTLs, each record after a comment naming the component that needs it. A record
// whose value is unknown is written with a placeholder in angle brackets after a
// comment saying why, so that the snippet does not load until it is filled in.
func WriteZone(w io.Writer, workplace, domain string, recs []Record) error {
	origin := strings.TrimSuffix(domain, ".") + "."
	if _, err := fmt.Fprintf(w, "; DNS records of workplace %s (platzwart dns)\n$ORIGIN %s\n", workplace, origin); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	unknown := 0
	for _, r := range recs {
		fmt.Fprintf(tw, "; %s %s\n", r.Component, r.Source)
		if r.Note != "" {
			fmt.Fprintf(tw, "; note: %s\n", r.Note)
		}
		if !r.Known() {
			unknown++
			fmt.Fprintf(tw, "; unknown: %s\n", r.Unknown)
		}
		fmt.Fprintf(tw, "%s\t%d\tIN\t%s\t%s\n", r.Name, r.TTL, r.Type, zoneData(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if unknown > 0 {
		_, err := fmt.Fprintf(w, "; %d record(s) with a <placeholder>: fill them in before loading this snippet\n", unknown)
		return err
	}
	return nil
}

// zoneData is the record's RDATA in zone-file syntax.
func zoneData(r Record) string {
	v := r.Value
	if !r.Known() {
		v = placeholder(r)
	}
	switch r.Type {
	case MX:
		return fmt.Sprintf("%d %s", r.Priority, v)
	case SRV:
		return fmt.Sprintf("%d %d %d %s", r.Priority, r.Weight, r.Port, v)
	case TXT:
		return quoteTXT(v)
	}
	return v
}

// placeholder stands for an unknown value.
func placeholder(r Record) string {
	switch r.Type {
	case TXT:
		return "v=DKIM1; k=rsa; p=<public key>"
	case CNAME, MX, SRV:
		return "<target>"
	}
	return "<address>"
}

// quoteTXT splits text into quoted character-strings of at most 255 bytes, escaping
// quotes and backslashes.
func quoteTXT(text string) string {
	var parts []string
	for len(text) > maxTXTString {
		parts = append(parts, text[:maxTXTString])
		text = text[maxTXTString:]
	}
	parts = append(parts, text)
	for i, p := range parts {
		p = strings.ReplaceAll(p, `\`, `\\`)
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `\"`) + `"`
	}
	return strings.Join(parts, " ")
}

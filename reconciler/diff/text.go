package diff

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// TextOptions say how WriteText prints a report.
type TextOptions struct {
	// Color adds ANSI colours (for a terminal).
	Color bool
	// Full prints the whole content of added and removed objects too; without it they
	// are one line each (`platzwart render` shows new releases whole).
	Full bool
}

const (
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiReset  = "\x1b[0m"
)

// WriteText prints the report for people: one header line per release
// (`=== namespace/release (component): action`, with the version path of an upgrade
// that changes the component version, `(versions 33.0.7 → 34.0.4)`, and counts),
// then per changed object a line and its unified diff; unchanged releases are one
// line each. It ends with a summary line.
func (r *Report) WriteText(w io.Writer, o TextOptions) error {
	bw := bufio.NewWriter(w)
	paint := func(color, s string) string {
		if !o.Color {
			return s
		}
		return color + s + ansiReset
	}
	counts := map[Action]int{}
	for _, rel := range r.Releases {
		counts[rel.Action]++
		header := fmt.Sprintf("=== %s/%s (%s): %s", rel.Namespace, rel.Name, rel.Component, rel.Action)
		if len(rel.Versions) > 0 {
			header += " (versions " + strings.Join(rel.Versions, " → ") + ")"
		}
		if s := summary(rel); s != "" {
			header += ": " + s
		}
		fmt.Fprintln(bw, paint(ansiBold, header))
		if rel.Action == Conflict || rel.Action == Drift {
			fmt.Fprintf(bw, "    %s\n", rel.Reason)
		}
		for _, obj := range rel.Objects {
			switch obj.Action {
			case Added:
				fmt.Fprintln(bw, paint(ansiGreen, "+ "+obj.String()))
			case Removed:
				fmt.Fprintln(bw, paint(ansiRed, "- "+obj.String()))
			case Kept:
				fmt.Fprintln(bw, "= "+obj.String()+" (kept: helm.sh/resource-policy keep)")
			case Changed:
				fmt.Fprintln(bw, paint(ansiYellow, "~ "+obj.String()))
			}
			if obj.Action == Changed || o.Full && (obj.Action == Added || obj.Action == Removed) {
				writeDiff(bw, obj.Diff, paint)
			}
		}
	}
	for _, id := range r.RemovedWorkplaces {
		fmt.Fprintln(bw, paint(ansiBold, fmt.Sprintf("=== workplace %s: removed from %s; platzwart leaves its releases in place (platzwart uninstall removes them)", id, r.To)))
	}
	var parts []string
	for _, a := range []Action{Install, Upgrade, Uninstall, Drift, Conflict, Unchanged} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	if len(r.RemovedWorkplaces) > 0 {
		parts = append(parts, fmt.Sprintf("%d workplace(s) removed", len(r.RemovedWorkplaces)))
	}
	if len(parts) == 0 {
		parts = append(parts, "no releases")
	}
	fmt.Fprintf(bw, "%s → %s: %s\n", r.From, r.To, strings.Join(parts, ", "))
	return bw.Flush()
}

// summary counts a release's objects by change: "2 changed, 1 to add".
func summary(rel Release) string {
	var parts []string
	for _, c := range []struct {
		change Change
		word   string
	}{{Changed, "changed"}, {Added, "to add"}, {Removed, "to remove"}, {Kept, "kept"}} {
		if n := rel.Count(c.change); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, c.word))
		}
	}
	return strings.Join(parts, ", ")
}

// writeDiff prints a unified diff, coloured line by line.
func writeDiff(w io.Writer, d string, paint func(color, s string) string) {
	for _, line := range strings.SplitAfter(d, "\n") {
		if line == "" {
			continue
		}
		text := strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(text, "+++"), strings.HasPrefix(text, "---"):
			text = paint(ansiBold, text)
		case strings.HasPrefix(text, "@@"):
			text = paint(ansiCyan, text)
		case strings.HasPrefix(text, "+"):
			text = paint(ansiGreen, text)
		case strings.HasPrefix(text, "-"):
			text = paint(ansiRed, text)
		}
		fmt.Fprintln(w, text)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// printer writes a value as a table, YAML or JSON, like kubectl's -o.
type printer struct {
	format string
}

// validFormats are the -o values every listing command accepts.
const validFormats = "table|yaml|json"

// print writes v in the chosen format; table draws the rows given by table.
func (p printer) print(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	switch p.format {
	case "", "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return fmt.Errorf("unknown output format %q (known: %s)", p.format, validFormats)
}

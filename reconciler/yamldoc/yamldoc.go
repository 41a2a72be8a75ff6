// Package yamldoc decodes multi-document YAML files strictly and reports errors that
// name the file, the document and the field.
package yamldoc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Error is a problem in one field of one document of one file.
type Error struct {
	// File is the path of the file, relative to the repository where possible.
	File string
	// Doc names the document, such as `Workplace "demo"` or `document 2`.
	Doc string
	// Field is the path of the field, such as spec.components.video.
	Field string
	// Err is what is wrong.
	Err error
}

// Error formats the problem as "file: doc: field: message".
func (e *Error) Error() string {
	parts := make([]string, 0, 4)
	for _, p := range []string{e.File, e.Doc, e.Field} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	parts = append(parts, e.Err.Error())
	return strings.Join(parts, ": ")
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for the field of a document with a formatted message.
func Errorf(file, doc, field, format string, args ...any) *Error {
	return &Error{File: file, Doc: doc, Field: field, Err: fmt.Errorf(format, args...)}
}

// Document is one YAML document of a file.
type Document struct {
	// File is the path of the file the document came from.
	File string
	// Index is the 1-based position of the document in the file.
	Index int
	// Line is the 1-based line where the document starts.
	Line int
	// JSON is the document converted to JSON.
	JSON []byte
	// APIVersion, Kind and Name are read from the document's header.
	APIVersion, Kind, Name string
}

// Label names the document in messages: `Kind "name"`, or `document N` when the
// document has no kind or name.
func (d *Document) Label() string {
	if d.Kind != "" && d.Name != "" {
		return fmt.Sprintf("%s %q", d.Kind, d.Name)
	}
	return fmt.Sprintf("document %d (line %d)", d.Index, d.Line)
}

// Split parses data as a stream of YAML documents, skipping empty ones.
func Split(file string, data []byte) ([]*Document, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []*Document
	line := 1
	for index := 1; ; index++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, &Error{File: file, Doc: fmt.Sprintf("document %d (line %d)", index, line), Err: err}
		}
		start := line
		line += bytes.Count(raw, []byte("\n"))
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			index--
			continue
		}
		doc := &Document{File: file, Index: index, Line: start}
		js, err := yaml.YAMLToJSONStrict(raw)
		if err != nil {
			return nil, &Error{File: file, Doc: doc.Label(), Err: fmt.Errorf("malformed YAML: %s", shiftLine(err.Error(), start-1))}
		}
		if !bytes.HasPrefix(bytes.TrimSpace(js), []byte("{")) {
			return nil, &Error{File: file, Doc: doc.Label(), Err: errors.New("malformed document: expected a mapping with apiVersion, kind, metadata and spec")}
		}
		var header struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		// The header is read leniently; the strict decode of the whole document follows.
		_ = kjson.UnmarshalCaseSensitivePreserveInts(js, &header)
		doc.JSON, doc.APIVersion, doc.Kind, doc.Name = js, header.APIVersion, header.Kind, header.Metadata.Name
		docs = append(docs, doc)
	}
}

// Decode decodes the document strictly into out: unknown and duplicate fields are
// errors naming the field.
func (d *Document) Decode(out any) error {
	strict, err := kjson.UnmarshalStrict(d.JSON, out, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return d.fieldError(err)
	}
	if len(strict) > 0 {
		errs := make([]error, 0, len(strict))
		for _, s := range strict {
			errs = append(errs, d.fieldError(s))
		}
		return errors.Join(errs...)
	}
	return nil
}

var (
	unknownField = regexp.MustCompile(`^unknown field "([^"]*)"$`)
	dupField     = regexp.MustCompile(`^duplicate field "([^"]*)"$`)
	typeError    = regexp.MustCompile(`^json: cannot unmarshal (\S+) into Go struct field \S*?\.(\S+) of type (\S+)$`)
	typeValue    = regexp.MustCompile(`^json: cannot unmarshal (\S+) into Go value of type (\S+)$`)
	yamlLine     = regexp.MustCompile(`line (\d+)`)
)

// fieldError turns a decoder error into an *Error with the field path separated.
func (d *Document) fieldError(err error) *Error {
	msg := err.Error()
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		return &Error{File: d.File, Doc: d.Label(), Field: m[1], Err: errors.New("unknown field")}
	}
	if m := dupField.FindStringSubmatch(msg); m != nil {
		return &Error{File: d.File, Doc: d.Label(), Field: m[1], Err: errors.New("duplicate field")}
	}
	if m := typeError.FindStringSubmatch(msg); m != nil {
		return &Error{File: d.File, Doc: d.Label(), Field: m[2], Err: fmt.Errorf("expected %s, got %s", m[3], m[1])}
	}
	if m := typeValue.FindStringSubmatch(msg); m != nil {
		return &Error{File: d.File, Doc: d.Label(), Err: fmt.Errorf("expected %s, got %s", m[2], m[1])}
	}
	return &Error{File: d.File, Doc: d.Label(), Err: err}
}

// shiftLine adds offset to the line numbers a YAML parser reports for one document,
// so they count from the start of the file.
func shiftLine(msg string, offset int) string {
	return yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
		var n int
		if _, err := fmt.Sscanf(s, "line %d", &n); err != nil {
			return s
		}
		return fmt.Sprintf("line %d", n+offset)
	})
}

// stripComments drops comment lines, so a document of only comments counts as empty.
func stripComments(raw []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.Split(raw, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if bytes.HasPrefix(t, []byte("#")) || bytes.Equal(t, []byte("---")) {
			continue
		}
		out.Write(l)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// MaxIconSize bounds a tile's icon (the file, or the data of a data: URI): the
// portal's page carries every icon inline.
const MaxIconSize = 16 << 10

// iconURI returns a tile's icon as a data: URI: icon itself when it is one, else the
// file of that name in the component's folder dir of fsys, which must be an SVG
// (root element svg) or a PNG.
func iconURI(fsys fs.FS, dir, icon string) (string, error) {
	if strings.HasPrefix(icon, "data:") {
		return icon, checkDataURI(icon)
	}
	if strings.Contains(icon, "/") || !fs.ValidPath(icon) {
		return "", fmt.Errorf("%q: a file name in the component's folder (icon.svg) or a data: URI", icon)
	}
	var media string
	switch ext := path.Ext(icon); ext {
	case ".svg":
		media = "image/svg+xml"
	case ".png":
		media = "image/png"
	default:
		return "", fmt.Errorf("%q: the icon must be an .svg or .png file, or a data: URI", icon)
	}
	if fsys == nil {
		return "", fmt.Errorf("%q: %w", icon, fs.ErrNotExist)
	}
	data, err := fs.ReadFile(fsys, path.Join(dir, icon))
	if err != nil {
		return "", fmt.Errorf("%q: %w", icon, err)
	}
	if err := checkIcon(media, data); err != nil {
		return "", fmt.Errorf("%q: %w", icon, err)
	}
	return "data:" + media + ";base64," + base64.StdEncoding.EncodeToString(data), nil
}

// checkDataURI accepts a base64 data: URI of an SVG or PNG icon.
func checkDataURI(uri string) error {
	meta, payload, ok := strings.Cut(strings.TrimPrefix(uri, "data:"), ",")
	media, isBase64 := strings.CutSuffix(meta, ";base64")
	if !ok || !isBase64 {
		return errors.New("a data: URI must be data:image/svg+xml;base64,… or data:image/png;base64,…")
	}
	if media != "image/svg+xml" && media != "image/png" {
		return fmt.Errorf("data: URI of type %q: only image/svg+xml and image/png", media)
	}
	data, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return fmt.Errorf("data: URI: %w", err)
	}
	return checkIcon(media, data)
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// checkIcon checks an icon's size and that its content is of its media type.
func checkIcon(media string, data []byte) error {
	if len(data) > MaxIconSize {
		return fmt.Errorf("%d bytes, more than %d", len(data), MaxIconSize)
	}
	if media == "image/png" {
		if !bytes.HasPrefix(data, pngMagic) {
			return errors.New("not a PNG image")
		}
		return nil
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return errors.New("not an SVG image: no root element")
		}
		if err != nil {
			return fmt.Errorf("not an SVG image: %w", err)
		}
		if el, ok := tok.(xml.StartElement); ok {
			if el.Name.Local != "svg" {
				return fmt.Errorf("not an SVG image: the root element is <%s>", el.Name.Local)
			}
			return nil
		}
	}
}

package main

// The platzwart image has no CA bundle (it is built without a base image, see
// build/ociimage): there, crypto/x509 falls back to these roots (Mozilla's, as
// golang.org/x/crypto ships them) for HTTPS to Git servers. Wherever the system
// has a bundle, or SSL_CERT_FILE / SSL_CERT_DIR name one, that is used instead.
import _ "golang.org/x/crypto/x509roots/fallback"

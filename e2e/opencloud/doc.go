// Package opencloud holds OpenCloud's sign-in test (signin_test.go): an opencloud
// binary, run with exactly the init command and environment charts/opencloud renders
// for a planned workplace (paths, listen address and issuer mapped to this machine),
// against a real OpenID provider (zitadel/oidc's example provider over TLS under a
// CA the chart's ca-bundle script adds to the system bundle): the web client's
// configuration, the proxy's discovery and the account created on the first request
// with an access token, with its role. The binary is not built here: the Go module
// proxy serves opencloud-eu/opencloud only at v1.0.0 and v1.1.0, and not the
// opencloud-eu/reva version they require (see charts/opencloud/README.md); the test
// runs the binary PLATZWART_OPENCLOUD_BIN names and is skipped without one. It has
// no non-test code.
package opencloud

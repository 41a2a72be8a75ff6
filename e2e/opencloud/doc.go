// Package opencloud holds OpenCloud's sign-in test (signin_test.go): an opencloud
// binary, run with exactly the init command and environment charts/opencloud renders
// for a planned workplace (paths, listen address and issuer mapped to this machine),
// against a real OpenID provider (zitadel/oidc's example provider over TLS under a
// CA the chart's ca-bundle script adds to the system bundle): the web client's
// configuration, the proxy's discovery and the account created on the first request
// with an access token, with its role. The binary is not built here: the Go module
// proxy serves opencloud-eu/opencloud only at v1.0.0 and v1.1.0, and not the
// opencloud-eu/reva version they require (see charts/opencloud/README.md); the test
// runs the binary PLATZWART_OPENCLOUD_BIN names and is skipped without one, so
// `make test` does not run it. It has no non-test code.
//
// How it was run (2026-11-29): the source of opencloud-eu/opencloud at commit
// ebba861 (2025-02-13, the newest snapshot the fetch tool served; it reports
// 0.1.0+dev, not the chart's 4.0.6) built with its vendored dependencies, cgo and
// Debian's libsqlite3-dev (a go build -mod=vendor of its opencloud command, about 50
// minutes on 2 shared cores; its web assets are empty, which the test does not
// need), then
//
//	PLATZWART_OPENCLOUD_BIN=/path/to/opencloud go test -count=1 ./e2e/opencloud/
//
// passed both tests in 14 s. Run it again with a binary of the chart's version
// whenever one can be built here.
package opencloud

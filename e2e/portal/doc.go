// Package portal holds the portal's sign-in test (portal_test.go): oauth2-proxy,
// built from the Go module proxy at the version of the chart's image
// (e2e/tools/oauth2-proxy), run with exactly the environment charts/portal renders
// for a planned workplace, against a real OpenID provider (zitadel/oidc's example
// provider) behind a TLS "ingress" whose certificate and CA are the ones
// platzwart generates in the cluster. It has no non-test code.
package portal

// Package conformance holds the test every built-in chart must pass: each component
// of the catalog, rendered offline under every routing mode (Ingress, Gateway) and TLS
// mode (SelfSigned, Issuer as ClusterIssuer and as namespaced Issuer, Secret, None),
// serves its public hosts with TLS exactly as the mode says, shares no host with
// another component, makes every HTTPS client it declares (component.yaml `trust`)
// trust the workplace's CA (routing.tls.caSecret), and admits in its NetworkPolicies
// the routing controller and every capability edge of the plan.
//
// The test iterates the catalog, so a component added later is checked without
// changing the test. It has no non-test code: conformance_test.go holds the matrix
// and the two tests, objects_test.go decodes the rendered objects, and hosts_test.go,
// trust_test.go, netpol_test.go (a NetworkPolicy evaluator) and pss_test.go (the
// restricted Pod Security Standard and its listed exceptions) hold the checks, and
// catches_test.go shows that they report components that break an invariant.
package conformance

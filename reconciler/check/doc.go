// Package check tests a deployed workplace the way its people use it: through its
// public URLs, from wherever it runs (the operator's machine for `platzwart check`, the
// controller after an apply). [Run] takes the plan the workplace was applied from and
// returns a typed [Report]: one [Result] per check with a [Status], a [Reason] to
// switch on, one sentence saying what was seen and a suggested fix.
//
// What the checks prove, when they pass:
//
//   - tls: every public host of the plan accepts a TLS connection at the address it
//     resolves to (or --address / --resolve) and presents a certificate valid for it,
//     now, under the workplace's CA (the plan's routing.tls.caSecret, else the
//     self-signed <workplace>-tls Secret's ca.crt, else the system roots; --ca-file
//     overrides). Its expiry is reported. An external identity provider's host
//     (external-oidc) is checked the same way, under the same CA the apps trust; it is
//     dialled where it resolves or --resolve says, never at --address.
//   - oidc-discovery: the identity provider serves OpenID provider metadata at
//     <issuerURL>/.well-known/openid-configuration naming exactly the issuer the apps
//     were configured with.
//   - oidc-client: the provider authenticates each confidential consumer's client with
//     the secret in the cluster (generated, or for an external provider the operator's
//     Secret the workplace names) (at the RFC 7009 revocation endpoint, with a token that
//     does not exist: nothing is revoked).
//   - oidc-redirect-uri: an authorization request with each redirect URI the plan
//     registers leads to the login page, and one with a URI nobody registered is
//     refused (a provider accepting any URI would be a failure too).
//   - oidc-logout-uri: the provider accepts each post-logout redirect URI for the
//     client (RP-Initiated Logout without id_token_hint: no session is ended).
//   - app: each app answers as a working installation: Matrix client versions, login
//     flows offering single sign-on and Synapse handing the login to the provider;
//     Element's config.json pointing at the homeserver and the selected Jitsi; the
//     .well-known delegation; Nextcloud's status.php installed, its login page offering
//     the user_oidc provider and that provider handing the login to the identity
//     provider; Collabora's WOPI discovery at its public URL; Jitsi's config.js asking
//     for authentication and its OIDC adapter handing the login over; Greenlight's
//     health check and single sign-on flag; the portal's oauth2-proxy sending a
//     browser without a session to the provider as client portal, back to its
//     callback. A hand-off (a redirect to the provider's authorization endpoint with
//     the app's client id) that an app builds from the provider's discovery shows
//     that the app reaches and trusts the provider.
//
// What they cannot prove: that a person can complete a login (no credentials are
// used, no user is created), that tokens are accepted by the apps after the login,
// that back-channel logout reaches the apps, that Collabora's WOPI allow-list admits
// the files host (it is not observable without opening a document), that Jitsi
// carries media (UDP to the videobridge), that BigBlueButton's media servers work
// beyond Greenlight's own health check, or anything about hosts other than the ones
// the plan names. Results are what one machine saw: DNS and routing from elsewhere
// may differ.
//
// Every probe is bounded by Options.Timeout; nothing is retried. Checks that depend on
// one that failed (a host's TLS, the provider's discovery) are skipped with
// ReasonDependencyFailed, so an unreachable or half-installed workplace gives one
// failure per cause and returns within a few timeouts.
package check

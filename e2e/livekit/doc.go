// Package livekit holds the meet chart's media server test (livekit_test.go):
// livekit-server, built from the Go module proxy at the version of the chart's image
// (e2e/tools/livekit-server), run on loopback with exactly the configuration file,
// arguments and environment charts/meet renders, and the API key pair platzwart
// generates in the cluster. It shows the server starts with that configuration,
// listens where the chart's Services and probes point, accepts tokens signed with the
// generated key and refuses others. See charts/meet/README.md.
package livekit

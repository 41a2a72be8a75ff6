// Package storagetest checks render's release-size computation (render.EncodedSize)
// against what Helm really stores, on the local control plane (e2e/cluster). It has
// tests only.
package storagetest

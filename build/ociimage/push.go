package ociimage

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push writes the index and its images to ref (a tag or a digest reference),
// with the credentials of ~/.docker/config.json (or DOCKER_CONFIG) when there are
// any. Registries on localhost and 127.0.0.1 are spoken to over plain HTTP.
func Push(ctx context.Context, idx v1.ImageIndex, ref name.Reference) error {
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

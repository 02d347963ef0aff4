package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// pusher uploads images to a registry handler with the requests of the OCI distribution spec:
// each blob in one monolithic POST, then the manifest in a PUT. It calls the handler directly,
// with no network and no client library: go-containerregistry's remote package needs the Docker
// CLI's credential modules, which this module does not require.
type pusher struct {
	handler http.Handler
	// pushed holds the blobs already uploaded. The in-memory registry stores blobs by digest for
	// every repository, so each is uploaded once.
	pushed map[v1.Hash]bool
}

// pushImage uploads the layers, config and manifest of img as repository:identifier, where
// identifier is a tag or a digest.
func (p *pusher) pushImage(repository, identifier string, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	for _, layer := range layers {
		digest, err := layer.Digest()
		if err != nil {
			return fmt.Errorf("layer digest: %w", err)
		}
		content, err := layer.Compressed()
		if err != nil {
			return fmt.Errorf("open layer %s: %w", digest, err)
		}
		err = p.pushBlob(repository, digest, content)
		content.Close()
		if err != nil {
			return err
		}
	}

	configDigest, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("config digest: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := p.pushBlob(repository, configDigest, bytes.NewReader(config)); err != nil {
		return err
	}

	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return fmt.Errorf("manifest media type: %w", err)
	}
	return p.do(http.MethodPut, "/v2/"+repository+"/manifests/"+identifier, string(mediaType), bytes.NewReader(manifest))
}

func (p *pusher) pushBlob(repository string, digest v1.Hash, content io.Reader) error {
	if p.pushed[digest] {
		return nil
	}
	// A body of known length gives the request a Content-Length, which the registry checks.
	blob, err := io.ReadAll(content)
	if err != nil {
		return fmt.Errorf("read blob %s: %w", digest, err)
	}
	if err := p.do(http.MethodPost, "/v2/"+repository+"/blobs/uploads/?digest="+digest.String(), "application/octet-stream", bytes.NewReader(blob)); err != nil {
		return err
	}
	p.pushed[digest] = true
	return nil
}

// do sends one request to the handler and fails unless the response status is 201 Created.
func (p *pusher) do(method, target, contentType string, body io.Reader) error {
	req := httptest.NewRequest(method, target, body)
	req.Header.Set("Content-Type", contentType)
	recorder := httptest.NewRecorder()
	p.handler.ServeHTTP(recorder, req)
	if recorder.Code != http.StatusCreated {
		return fmt.Errorf("%s %s: status %d, want 201: %s", method, target, recorder.Code, bytes.TrimSpace(recorder.Body.Bytes()))
	}
	return nil
}

package e2e

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// portForward forwards a free port of the test's loopback address to port in the pod, as
// kubectl port-forward does through the kubelet, until the test ends. It returns the
// local port.
func (s *suite) portForward(t *testing.T, p *pod, port int32) int {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: p.id, Port: []int32{port}})
	if err != nil {
		t.Fatalf("CRI PortForward to port %d of pod %s failed: %v", port, p.id, err)
	}

	transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, parseStreamURL(t, resp.GetUrl()))

	stop, ready := make(chan struct{}), make(chan struct{})
	ports := []string{"0:" + strconv.Itoa(int(port))}
	forwarder, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, ports, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("set up the port forward to pod %s: %v", p.id, err)
	}
	done := make(chan error, 1)
	go func() { done <- forwarder.ForwardPorts() }()
	t.Cleanup(func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("the port forward to pod %s ended with an error: %v", p.id, err)
		}
	})

	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("the port forward to pod %s ended before it was ready: %v", p.id, err)
	}
	forwarded, err := forwarder.GetPorts()
	if err != nil || len(forwarded) != 1 {
		t.Fatalf("the port forward to pod %s reports the ports %v (%v), expected one", p.id, forwarded, err)
	}
	return int(forwarded[0].Local)
}

// getBody fetches url over plain HTTP and returns the status code and body.
func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: probeTimeout}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("HTTP GET %s failed: %v", url, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read the response of GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

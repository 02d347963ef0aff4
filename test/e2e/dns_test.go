package e2e

import (
	"errors"
	"net"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// clusterServiceIP is the address the test's DNS server gives every cluster name.
const clusterServiceIP = "10.96.7.7"

// TestClusterDNS resolves a Service's short name in a container whose pod has the DNS
// config a kubelet gives with dnsPolicy ClusterFirstWithHostNet: the search path of the
// pod's namespace and a cluster DNS server, here one the test serves on loopback.
func TestClusterDNS(t *testing.T) {
	s := start(t)
	serveClusterDNS(t)

	p := s.runPodWith(t, "dns", s.handler, func(config *runtimeapi.PodSandboxConfig) {
		config.DnsConfig = &runtimeapi.DNSConfig{
			Servers:  []string{"127.0.0.1"},
			Searches: []string{"reaper-e2e.svc.cluster.local", "svc.cluster.local", "cluster.local"},
			Options:  []string{"ndots:5"},
		}
	})
	c := s.runContainer(t, p, shellConfig("dns", "getent hosts web; exit $?"))
	status := s.waitExited(t, c)

	entries, err := readLog(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.Join(logLines(entries, "stdout"), "\n")
	if status.GetExitCode() != 0 || !strings.Contains(out, clusterServiceIP+" ") || !strings.Contains(out, "web.reaper-e2e.svc.cluster.local") {
		t.Errorf("getent hosts web exited with %d and printed %q; expected %s for web.reaper-e2e.svc.cluster.local through the pod's resolv.conf",
			status.GetExitCode(), out, clusterServiceIP)
	}
}

// serveClusterDNS answers A queries for names under cluster.local on 127.0.0.1:53 with
// clusterServiceIP, and every other query with NXDOMAIN, until the test ends.
func serveClusterDNS(t *testing.T) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("serve DNS on 127.0.0.1:53 for the pod (the e2e suite runs in a network namespace of its own, where the port is free): %v", err)
	}
	t.Cleanup(func() { conn.Close() })

	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := conn.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			if reply, err := answerDNS(buf[:n]); err == nil {
				_, _ = conn.WriteTo(reply, addr)
			}
		}
	}()
}

func answerDNS(query []byte) ([]byte, error) {
	var msg dnsmessage.Message
	if err := msg.Unpack(query); err != nil {
		return nil, err
	}
	if len(msg.Questions) != 1 {
		return nil, errors.New("one question expected")
	}

	question := msg.Questions[0]
	msg.Response = true
	msg.Authoritative = true
	msg.Answers = nil
	switch {
	case !strings.HasSuffix(question.Name.String(), ".cluster.local."):
		msg.RCode = dnsmessage.RCodeNameError
	case question.Type == dnsmessage.TypeA:
		msg.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: question.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5},
			Body:   &dnsmessage.AResource{A: [4]byte(net.ParseIP(clusterServiceIP).To4())},
		}}
	}
	return msg.Pack()
}

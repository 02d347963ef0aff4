package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// podServerPort is the TCP port of the web server that the pod network tests run in a pod.
	podServerPort = 18080
	// probeTimeout bounds each TCP connect and HTTP request of a probe, as the kubelet's
	// timeoutSeconds does.
	probeTimeout = 5 * time.Second
	// hostPython is the interpreter whose http.server module is the pod's web server. Debian's
	// python3 package installs it.
	hostPython = "/usr/bin/python3"
	// libcniCacheDir is where libcni keeps one result file per pod and interface, named
	// NETWORK-SANDBOXID-IFNAME.
	libcniCacheDir = "/var/lib/cni/results"
)

// cniNetwork is the CNI bridge network of the pods without hostNetwork, as hack/containerd-up.sh
// wrote it to its env file.
type cniNetwork struct {
	name   string
	subnet netip.Prefix
	bridge string
	// ipamDir is host-local's data folder. It keeps one lease file per address, named after the
	// address, in a folder named after the network.
	ipamDir string
}

// cniNetwork returns the suite's bridge network, and fails t when containerd has none.
func (s *suite) cniNetwork(t *testing.T) cniNetwork {
	t.Helper()
	subnet := s.env["CNI_SUBNET"]
	if subnet == "" {
		t.Fatalf("hack/containerd-up.sh configured no CNI network (CNI_SUBNET is missing from %s/env), so pods without hostNetwork cannot start; run the suite with make e2e or hack/e2e.sh, which set CONTAINERD_CNI_SUBNET in a new network namespace", s.dir)
	}
	prefix, err := netip.ParsePrefix(subnet)
	if err != nil {
		t.Fatalf("CNI_SUBNET=%q in %s/env is not a subnet: %v", subnet, s.dir, err)
	}
	network := cniNetwork{
		name:    s.env["CNI_NETWORK"],
		subnet:  prefix,
		bridge:  s.env["CNI_BRIDGE"],
		ipamDir: s.env["CNI_IPAM_DIR"],
	}
	if network.name == "" || network.bridge == "" || network.ipamDir == "" {
		t.Fatalf("%s/env sets CNI_SUBNET but not all of CNI_NETWORK, CNI_BRIDGE and CNI_IPAM_DIR: %+v", s.dir, network)
	}
	return network
}

// leasePath returns the file in which host-local records that address is taken.
func (n cniNetwork) leasePath(address netip.Addr) string {
	return filepath.Join(n.ipamDir, n.name, address.String())
}

// runPodNetworkPod starts a pod without hostNetwork, with the network namespace mode POD that the
// kubelet sets for it. containerd then creates a network namespace, and CNI adds the pod to the
// bridge network. It registers the pod's removal.
func (s *suite) runPodNetworkPod(t *testing.T, name, handler string) *pod {
	t.Helper()
	return s.runPodWith(t, name, handler, func(config *runtimeapi.PodSandboxConfig) {
		config.GetLinux().GetSecurityContext().GetNamespaceOptions().Network = runtimeapi.NamespaceMode_POD
	})
}

// podIP returns the pod IP that PodSandboxStatus reports, and fails t unless it lies in the
// bridge network's subnet.
func (s *suite) podIP(t *testing.T, p *pod, network cniNetwork) netip.Addr {
	t.Helper()
	status, _ := s.podStatus(t, p)
	if mode := status.GetLinux().GetNamespaces().GetOptions().GetNetwork(); mode != runtimeapi.NamespaceMode_POD {
		t.Errorf("sandbox network namespace mode is %v, expected POD for a pod without hostNetwork", mode)
	}
	reported := status.GetNetwork().GetIp()
	address, err := netip.ParseAddr(reported)
	if err != nil {
		t.Fatalf("PodSandboxStatus of %s reports the pod IP %q, expected an address of %s: %v", p.id, reported, network.subnet, err)
	}
	if !network.subnet.Contains(address) {
		t.Fatalf("PodSandboxStatus of %s reports the pod IP %s, expected an address of the CNI subnet %s", p.id, address, network.subnet)
	}
	return address
}

// sandboxNetNSPath returns the network namespace path of the sandbox's OCI spec, from the
// verbose PodSandboxStatus. It is the file under containerd's state folder that holds the
// namespace CNI configured.
func (s *suite) sandboxNetNSPath(t *testing.T, p *pod) string {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	resp, err := s.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s failed: %v", p.id, err)
	}
	var info struct {
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct {
					Type string `json:"type"`
					Path string `json:"path"`
				} `json:"namespaces"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		t.Fatalf("PodSandboxStatus %s: invalid verbose info: %v", p.id, err)
	}
	for _, ns := range info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" && ns.Path != "" {
			return ns.Path
		}
	}
	t.Fatalf("the sandbox spec of %s names no network namespace path (namespaces: %+v)", p.id, info.RuntimeSpec.Linux.Namespaces)
	return ""
}

// networkHandlers returns the handlers that the pod network tests run under: the suite's handler
// and the protected one, whose container joins the pod's network namespace before it builds
// its protected view of the host.
func (s *suite) networkHandlers() []string {
	handlers := []string{s.handler}
	if s.handler != "reaper-protected" {
		handlers = append(handlers, "reaper-protected")
	}
	return handlers
}

func TestPodNetworkNamespace(t *testing.T) {
	s := start(t)
	network := s.cniNetwork(t)
	hostNet, err := namespaceOf("self", "net")
	if err != nil {
		t.Fatal(err)
	}

	for _, handler := range s.networkHandlers() {
		t.Run(handler, func(t *testing.T) {
			p := s.runPodNetworkPod(t, "pod-network", handler)
			address := s.podIP(t, p, network)
			_, info := s.podStatus(t, p)
			if info.Pid == 0 {
				t.Fatalf("verbose PodSandboxStatus of %s reports no sandbox pid", p.id)
			}
			sandboxPid := strconv.Itoa(int(info.Pid))

			// The sandbox process is in the namespace that containerd created and CNI
			// configured, which is not the host's.
			sandboxNet, err := namespaceOf(sandboxPid, "net")
			if err != nil {
				t.Fatal(err)
			}
			if sandboxNet == hostNet {
				t.Fatalf("sandbox process %s is in the host's network namespace %s, expected the pod's", sandboxPid, hostNet)
			}
			netnsPath := s.sandboxNetNSPath(t, p)
			if same, err := sameFile(netnsPath, filepath.Join("/proc", sandboxPid, "ns", "net")); err != nil {
				t.Fatal(err)
			} else if !same {
				t.Errorf("sandbox process %s is in network namespace %s, which is not the one at %s that CNI configured", sandboxPid, sandboxNet, netnsPath)
			}

			c := s.runContainer(t, p, containerConfig("sleeper", "/bin/sleep", "600"))
			containerPid := strconv.Itoa(s.containerPid(t, c))
			containerNet, err := namespaceOf(containerPid, "net")
			if err != nil {
				t.Fatal(err)
			}
			if containerNet != sandboxNet {
				t.Errorf("container process %s is in network namespace %s, expected the sandbox's %s (the host's is %s)", containerPid, containerNet, sandboxNet, hostNet)
			}

			resp := s.execSync(t, c, "/usr/bin/readlink", "/proc/self/ns/net")
			if got := strings.TrimSpace(string(resp.GetStdout())); got != sandboxNet {
				t.Errorf("an exec in the container is in network namespace %q (stderr %q), expected the sandbox's %s", got, resp.GetStderr(), sandboxNet)
			}

			// /proc/net shows the reader's own network namespace, so cat prints the view of a
			// program in the container.
			resp = s.execSync(t, c, "/bin/cat", "/proc/net/fib_trie")
			if addresses := localIPv4Addresses(string(resp.GetStdout())); !slices.Contains(addresses, address.String()) {
				t.Errorf("an exec in the container has the local IPv4 addresses %v (stderr %q), expected the pod IP %s among them", addresses, resp.GetStderr(), address)
			}
			resp = s.execSync(t, c, "/bin/cat", "/proc/net/dev")
			interfaces := interfaceNames(string(resp.GetStdout()))
			if !slices.Contains(interfaces, "eth0") {
				t.Errorf("an exec in the container lists the interfaces %v, expected the pod's eth0 among them", interfaces)
			}
			if slices.Contains(interfaces, network.bridge) {
				t.Errorf("an exec in the container lists the interfaces %v, including the bridge %s of the host's network namespace", interfaces, network.bridge)
			}
			t.Logf("pod %s: IP %s, sandbox pid %s and container pid %s in %s (host: %s), exec lists interfaces %v", p.id, address, sandboxPid, containerPid, sandboxNet, hostNet, interfaces)
		})
	}
}

func TestPodNetworkProbes(t *testing.T) {
	s := start(t)
	network := s.cniNetwork(t)
	if out, err := exec.Command(hostPython, "-c", "import http.server").CombinedOutput(); err != nil {
		t.Fatalf("the pod's web server runs the host's %s -m http.server, which fails here (%v: %s); install the Debian package python3", hostPython, err, out)
	}

	for _, handler := range s.networkHandlers() {
		t.Run(handler, func(t *testing.T) {
			p := s.runPodNetworkPod(t, "probes", handler)
			address := s.podIP(t, p, network)

			content := t.TempDir()
			page := "reaper-" + randomSuffix(t) + ".txt"
			body := "served from pod " + p.id + "\n"
			if err := os.WriteFile(filepath.Join(content, page), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			port := strconv.Itoa(podServerPort)
			web := s.runContainer(t, p, containerConfig("web", hostPython, "-m", "http.server", "--bind", "0.0.0.0", "--directory", content, port))

			// A TCP probe from the host's network namespace, as the kubelet runs it, retried
			// until the server listens.
			endpoint := net.JoinHostPort(address.String(), port)
			waitFor(t, "a TCP connection to "+endpoint, func() (bool, error) {
				conn, err := net.DialTimeout("tcp", endpoint, probeTimeout)
				if err == nil {
					conn.Close()
					return true, nil
				}
				status, _, statusErr := s.tryContainerStatus(web)
				if statusErr == nil && status.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
					t.Fatalf("the web server exited with code %d before it accepted a connection on %s; its log:\n%s", status.GetExitCode(), endpoint, tailFile(web.logPath, 20))
				}
				return false, err
			})

			// An HTTP probe. getBody ignores proxy settings in the environment, because the pod
			// IP exists only in this network namespace.
			url := "http://" + endpoint + "/" + page
			code, received := getBody(t, url)
			if code != http.StatusOK || received != body {
				t.Errorf("GET %s from the host's network namespace returned %d %q, expected 200 %q", url, code, received, body)
			}

			// kubectl port-forward: containerd connects to the port inside the pod's network
			// namespace.
			forwarded := "http://127.0.0.1:" + strconv.Itoa(s.portForward(t, p, podServerPort)) + "/" + page
			if code, got := getBody(t, forwarded); code != http.StatusOK || got != body {
				t.Errorf("GET %s through a port forward returned %d %q, expected 200 %q", forwarded, code, got, body)
			}

			// The server listens only in the pod's network namespace, so the host's loopback
			// address refuses a connection to its port.
			loopback := net.JoinHostPort("127.0.0.1", port)
			if conn, err := net.DialTimeout("tcp", loopback, probeTimeout); err == nil {
				conn.Close()
				t.Errorf("a TCP connection to %s in the host's network namespace succeeded, expected it refused because the pod's server listens in the pod's namespace", loopback)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("a TCP connection to %s failed with %v, expected connection refused", loopback, err)
			}
		})
	}
}

func TestPodNetworkRemoved(t *testing.T) {
	s := start(t)
	network := s.cniNetwork(t)
	before, err := hostInterfaces()
	if err != nil {
		t.Fatal(err)
	}

	p := s.runPodNetworkPod(t, "removed", s.handler)
	address := s.podIP(t, p, network)
	netnsPath := s.sandboxNetNSPath(t, p)
	s.runContainer(t, p, containerConfig("sleeper", "/bin/sleep", "600"))

	lease := network.leasePath(address)
	if data, err := os.ReadFile(lease); err != nil {
		t.Fatalf("host-local has no lease file for the pod IP %s: %v", address, err)
	} else if !strings.Contains(string(data), p.id) {
		t.Errorf("the lease file %s contains %q, expected the sandbox id %s", lease, data, p.id)
	}
	cachePattern := filepath.Join(libcniCacheDir, "*-"+p.id+"-*")
	if cached, err := filepath.Glob(cachePattern); err != nil {
		t.Fatal(err)
	} else if len(cached) == 0 {
		t.Errorf("libcni's cache has no file %s while the pod runs", cachePattern)
	}
	running, err := hostInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(running, network.bridge) {
		t.Errorf("the host's network namespace has the interfaces %v while the pod runs, expected the bridge %s among them", running, network.bridge)
	}
	known := append(slices.Clone(before), network.bridge)
	if added := subtract(running, known); len(added) == 0 {
		t.Errorf("the host's network namespace has the interfaces %v while the pod runs, expected the host end of the pod's veth pair besides %v and the bridge", running, before)
	}

	s.stopAndRemovePod(t, p)

	if _, err := os.Stat(lease); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the lease file %s of the pod IP is still there after the pod was removed (stat: %v)", lease, err)
	}
	if _, err := os.Stat(netnsPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the network namespace file %s is still there after the pod was removed (stat: %v)", netnsPath, err)
	}
	after, err := hostInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	if added := subtract(after, known); len(added) > 0 {
		t.Errorf("the host's network namespace has the new interfaces %v after the pod was removed, expected only the bridge %s besides %v", added, network.bridge, before)
	}
	cached, err := filepath.Glob(cachePattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(cached) > 0 {
		t.Errorf("libcni's cache still has %v after the pod was removed", cached)
	}
}

func TestHostNetworkPodNamespace(t *testing.T) {
	s := start(t)
	hostNet, err := namespaceOf("self", "net")
	if err != nil {
		t.Fatal(err)
	}

	for _, handler := range s.networkHandlers() {
		t.Run(handler, func(t *testing.T) {
			p := s.runPod(t, "host-network", handler)
			c := s.runContainer(t, p, containerConfig("sleeper", "/bin/sleep", "600"))
			containerPid := strconv.Itoa(s.containerPid(t, c))
			containerNet, err := namespaceOf(containerPid, "net")
			if err != nil {
				t.Fatal(err)
			}
			if containerNet != hostNet {
				t.Errorf("container process %s of a hostNetwork pod is in network namespace %s, expected the host's %s", containerPid, containerNet, hostNet)
			}

			resp := s.execSync(t, c, "/usr/bin/readlink", "/proc/self/ns/net")
			if got := strings.TrimSpace(string(resp.GetStdout())); got != hostNet {
				t.Errorf("an exec in a hostNetwork pod's container is in network namespace %q (stderr %q), expected the host's %s", got, resp.GetStderr(), hostNet)
			}
		})
	}
}

// hostInterfaces returns the names of the interfaces of the test's network namespace.
func hostInterfaces() ([]string, error) {
	interfaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list the interfaces of the host's network namespace: %w", err)
	}
	names := make([]string, 0, len(interfaces))
	for _, i := range interfaces {
		names = append(names, i.Name)
	}
	slices.Sort(names)
	return names, nil
}

// subtract returns the names of list that are not in remove.
func subtract(list, remove []string) []string {
	var rest []string
	for _, name := range list {
		if !slices.Contains(remove, name) {
			rest = append(rest, name)
		}
	}
	return rest
}

// interfaceNames returns the interface names of a /proc/net/dev listing, sorted. The first two
// lines are headers, and each other line starts with "NAME:".
func interfaceNames(procNetDev string) []string {
	var names []string
	for i, line := range strings.Split(procNetDev, "\n") {
		name, _, ok := strings.Cut(line, ":")
		if i < 2 || !ok {
			continue
		}
		names = append(names, strings.TrimSpace(name))
	}
	slices.Sort(names)
	return names
}

// localIPv4Addresses returns the addresses of the local routing table in a /proc/net/fib_trie
// listing, which are the IPv4 addresses of the reader's network namespace. Each is a
// "|-- ADDRESS" line followed by a "/32 host LOCAL" line.
func localIPv4Addresses(fibTrie string) []string {
	var addresses []string
	var last string
	for _, line := range strings.Split(fibTrie, "\n") {
		field := strings.TrimSpace(line)
		if address, ok := strings.CutPrefix(field, "|-- "); ok {
			last = address
			continue
		}
		if strings.HasPrefix(field, "/32 host LOCAL") && last != "" {
			addresses = append(addresses, last)
		}
	}
	slices.Sort(addresses)
	return slices.Compact(addresses)
}

// sameFile reports whether two paths name the same file, such as a network namespace file and
// a process's /proc/PID/ns/net.
func sameFile(a, b string) (bool, error) {
	infoA, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	infoB, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(infoA, infoB), nil
}

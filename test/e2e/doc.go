// Package e2e holds the end-to-end tests of Reaper's containerd shim. They drive a private
// containerd (started by hack/containerd-up.sh) through the CRI API, the way the kubelet does,
// and check on the host what a user of a Reaper pod would check.
//
// The suite needs root and the components built first. `make e2e` builds them and runs it,
// which is the same as:
//
//	make components build
//	hack/e2e.sh
//
// hack/e2e.sh runs go test -count=1 -v -timeout 20m ./test/e2e/... with the test binary in a new
// network namespace, and sets CONTAINERD_CNI_SUBNET so that hack/containerd-up.sh configures a
// CNI bridge network there, which the pods without hostNetwork join. hostNetwork pods share the
// new namespace, which takes the place of the host's network, so the suite leaves the machine's
// own network unchanged. A plain go test run has no CNI network, so the tests of pods without
// hostNetwork fail with the reason.
//
// It prints one final line "N passed, N failed" and exits non-zero if any test failed. Without
// root, without the scripts or without a working containerd every test fails with the reason.
//
// Environment:
//
//	E2E_HANDLER  CRI runtime handler for the pods under test (default "reaper"). With "runc"
//	             the same tests run against runc. Those that need a host process then fail,
//	             because runc runs the command inside the image.
//
// Two tests disturb the shared containerd on purpose: TestContainerdRestart stops it with
// SIGTERM and starts it again with the command line and environment it had, and TestShimKilled
// kills the shim of its own pod with SIGKILL. The tests run one at a time, so the others do not
// see this. The streaming tests dial containerd's CRI streaming server, which listens on
// 127.0.0.1 on a random port by default.
//
// When a test fails, the suite copies containerd's log to a file under $TMPDIR before the
// tear-down removes it, and prints the path. When setup or tear-down fails, it keeps the output
// of the hack/ scripts the same way.
package e2e

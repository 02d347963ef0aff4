// Package installer loads the configurations that reaper-installer writes with a real
// containerd. hack/installer-cases.sh builds the containerd versions and runs it as root.
package installer

package installer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
)

// ServedHandlers returns the runtime handlers that containerd's CRI lists.
type ServedHandlers func(ctx context.Context) ([]string, error)

// Restart is the method and check by which ApplyAndRestart makes containerd load a
// changed config.
type Restart struct {
	Restarter Restarter
	Served    ServedHandlers
	// Timeout bounds the wait for containerd to serve the handlers after a restart.
	Timeout time.Duration
	// LogFile, when set, is containerd's log in the installer's view; its last lines
	// go into the error when containerd does not come back.
	LogFile string
}

// ErrRolledBack is wrapped by the error of an install whose restart failed, after which
// the installer restored the previous config files and restarted containerd again.
var ErrRolledBack = errors.New("containerd did not serve the handlers after the restart; the previous config is back")

// rolledBackError is the error of a restart that failed, which also matches ErrRolledBack.
type rolledBackError struct{ err error }

func (e rolledBackError) Error() string   { return e.err.Error() }
func (e rolledBackError) Unwrap() []error { return []error{e.err, ErrRolledBack} }

// logTailLines is how much of containerd's log an error quotes.
const logTailLines = 5

// configFiles are the config files an install writes, with their content before it.
type configFiles map[string][]byte

// snapshotConfig reads the config files the plan writes, nil for a missing one.
func (p *InstallPlan) snapshotConfig() (configFiles, error) {
	files := configFiles{}
	for _, path := range p.configPaths() {
		data, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		files[path] = data
	}
	return files, nil
}

func (p *InstallPlan) configPaths() []string {
	var paths []string
	if p.DropInPath != "" {
		paths = append(paths, p.DropInPath)
	}
	if p.RootConfig != nil {
		paths = append(paths, p.Config.Path)
	}
	if p.TemplatePath != "" {
		paths = append(paths, p.TemplatePath)
	}
	return paths
}

// changes reports whether the plan writes other content than files holds.
func (p *InstallPlan) changes(files configFiles) bool {
	if p.DropInPath != "" && !bytes.Equal(files[p.DropInPath], p.DropIn) {
		return true
	}
	if p.TemplatePath != "" && !bytes.Equal(files[p.TemplatePath], p.Template) {
		return true
	}
	return p.RootConfig != nil && !bytes.Equal(files[p.Config.Path], p.RootConfig)
}

// Pending reports whether Apply would write a binary, the shim link or a config file,
// or create a folder: whether the host differs from the plan.
func (p *InstallPlan) Pending() (bool, error) {
	if len(p.CreatedDirs) > 0 {
		return true, nil
	}
	for _, b := range p.Binaries {
		if !b.upToDate() {
			return true, nil
		}
	}
	if p.Link != nil {
		target, err := p.Link.current()
		if err != nil || target != p.Link.target {
			return true, err
		}
	}

	files, err := p.snapshotConfig()
	if err != nil {
		return false, err
	}
	return p.changes(files), nil
}

// restore writes the files back as they were, and removes those that did not exist.
func (files configFiles) restore() error {
	var errs []error
	for path, data := range files {
		if data == nil {
			_, err := removeFile(path)
			errs = append(errs, err)
			continue
		}
		if _, err := os.Stat(path); err == nil {
			// The file's mode stays as it is.
			_, err = writeRootConfig(path, data)
			errs = append(errs, err)
			continue
		}
		errs = append(errs, writeFileAtomic(path, data, 0o644))
	}
	return errors.Join(errs...)
}

// ApplyAndRestart applies the plan and, when a config file changed or containerd does not
// serve the plan's handlers yet, restarts containerd and waits until its CRI serves them. When it does not, it restores the
// previous config files, restarts containerd again and returns an error that quotes
// containerd. It returns whether anything changed.
func (p *InstallPlan) ApplyAndRestart(ctx context.Context, log *slog.Logger, r Restart) (bool, error) {
	if err := r.Restarter.Check(ctx); err != nil {
		return false, err
	}

	before, err := p.snapshotConfig()
	if err != nil {
		return false, err
	}
	configChanged := p.changes(before)

	changed, err := p.Apply(log)
	if err != nil {
		return changed, err
	}
	if !configChanged && r.serves(ctx, p.Handlers) {
		return changed, nil
	}
	if !configChanged {
		// An earlier run wrote the config and ended before its restart.
		log.Info("the config is in place but containerd does not serve the Reaper handlers yet")
	}

	log.Info("restarting containerd to load the Reaper handlers", "handlers", p.Handlers)
	served, waitErr := r.restartAndWait(ctx, p.Handlers)
	if waitErr == nil {
		log.Info("containerd serves the Reaper handlers", "served", served)
		return true, nil
	}

	log.Error("containerd does not serve the Reaper handlers after the restart; restoring the previous config", "error", waitErr)
	failure := rolledBackError{fmt.Errorf("containerd does not serve %s after the restart, so the previous config files are back: %w%s",
		strings.Join(p.Handlers, ", "), waitErr, r.logTail())}
	if err := before.restore(); err != nil {
		return true, errors.Join(failure, fmt.Errorf("restore the previous config: %w", err))
	}
	if _, err := r.restartAndWait(ctx, nil); err != nil {
		return true, errors.Join(failure, fmt.Errorf("containerd did not come back with the previous config either: %w", err))
	}
	log.Info("containerd runs with the previous config again")
	return true, failure
}

// ApplyAndRestart removes what the plan removes and, when a config file changed or
// containerd still serves a Reaper handler (an earlier uninstall killed before its
// restart), restarts containerd and waits until its CRI responds. It returns whether
// anything changed.
func (p *UninstallPlan) ApplyAndRestart(ctx context.Context, log *slog.Logger, r Restart) (bool, error) {
	if err := r.Restarter.Check(ctx); err != nil {
		return false, err
	}

	changed, err := p.Apply(log)
	if err != nil {
		return changed, err
	}
	// The names of the handlers are gone with the config, so the default ones stand for them.
	if !changed && !r.servesAny(ctx, []string{DefaultHandler, DefaultProtectedHandler}) {
		return false, nil
	}

	log.Info("restarting containerd to unload the Reaper handlers")
	_, err = r.restartAndWait(ctx, nil)
	return true, err
}

// restartAndWait restarts containerd and waits until its CRI lists every handler.
func (r Restart) restartAndWait(ctx context.Context, handlers []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()

	if err := r.Restarter.Restart(ctx); err != nil {
		return nil, err
	}

	var lastErr error
	for {
		served, err := r.Served(ctx)
		if err == nil && !slices.ContainsFunc(handlers, func(h string) bool { return !slices.Contains(served, h) }) {
			return served, nil
		}
		if err == nil {
			err = fmt.Errorf("containerd serves only %q", served)
		}
		lastErr = err

		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("timed out after %s: %w", r.Timeout, lastErr)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// serves reports whether containerd's CRI lists every handler now.
func (r Restart) serves(ctx context.Context, handlers []string) bool {
	served, err := r.Served(ctx)
	return err == nil && !slices.ContainsFunc(handlers, func(h string) bool { return !slices.Contains(served, h) })
}

// servesAny reports whether containerd's CRI lists one of the handlers now.
func (r Restart) servesAny(ctx context.Context, handlers []string) bool {
	served, err := r.Served(ctx)
	return err == nil && slices.ContainsFunc(handlers, func(h string) bool { return slices.Contains(served, h) })
}

// logTail returns the last lines of containerd's log for an error, or "".
func (r Restart) logTail() string {
	if r.LogFile == "" {
		return ""
	}
	data, err := os.ReadFile(r.LogFile)
	if err != nil {
		return ""
	}

	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	lines = lines[max(0, len(lines)-logTailLines):]
	return "; containerd's log ends with:\n" + strings.Join(lines, "\n")
}

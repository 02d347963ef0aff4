package shim

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/console"
	taskv2 "github.com/containerd/containerd/api/runtime/task/v2"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/core/events"
	cdruntime "github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/oom"
	oomv1 "github.com/containerd/containerd/v2/pkg/oom/v1"
	oomv2 "github.com/containerd/containerd/v2/pkg/oom/v2"
	cdshim "github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/pkg/sys/reaper"
	"github.com/containerd/errdefs"
	runcC "github.com/containerd/go-runc"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
)

var _ cdshim.TTRPCService = (*service)(nil)

// service implements containerd's task API v3 for every container of one pod.
type service struct {
	ctx       context.Context
	publisher events.Publisher
	shutdown  shutdown.Service
	events    chan any
	exits     chan runcC.Exit
	epoller   *console.Epoller
	warnOnce  sync.Once
	oom       oom.Watcher // nil when the host's cgroups cannot report OOM kills

	// mu guards containers and byPid.
	mu         sync.Mutex
	containers map[string]*container
	byPid      map[int]*process
}

// newService starts the exit loop, the pty watcher and the event forwarder of a
// serving shim.
func newService(ctx context.Context, publisher cdshim.Publisher, sd shutdown.Service) (*service, error) {
	epoller, err := console.NewEpoller()
	if err != nil {
		return nil, fmt.Errorf("failed to create the pty epoller: %w", err)
	}
	go epoller.Wait() //nolint:errcheck // Wait ends with an error when the shim closes the epoller at shutdown.
	sd.RegisterCallback(func(context.Context) error { return epoller.Close() })

	s := &service{
		epoller:    epoller,
		ctx:        ctx,
		publisher:  publisher,
		shutdown:   sd,
		events:     make(chan any, 128),
		exits:      reaper.Default.Subscribe(),
		containers: make(map[string]*container),
		byPid:      make(map[int]*process),
	}

	s.oom = newOOMWatcher(ctx, publisher)

	go s.processExits()
	go s.forward(ctx, publisher)
	return s, nil
}

// newOOMWatcher starts the watcher for the host's cgroup version.
func newOOMWatcher(ctx context.Context, publisher events.Publisher) oom.Watcher {
	var (
		watcher oom.Watcher
		err     error
	)
	if cgroups.Mode() == cgroups.Unified {
		watcher, err = oomv2.New(publisher)
	} else {
		watcher, err = oomv1.New(publisher)
	}
	if err != nil {
		log.G(ctx).WithError(err).Warn("failed to start the OOM watcher; OOM kills will not be reported")
		return nil
	}

	go watcher.Run(ctx)
	return watcher
}

// RegisterTTRPC registers the task service on the shim's ttrpc server, in task
// API v3 and, for containerd 1.7, v2.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	taskv2.RegisterTTRPCTaskService(server, taskServiceV2{s})
	return nil
}

func (s *service) get(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	c, ok := s.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	return c, nil
}

// send queues an event; one goroutine publishes them in order.
func (s *service) send(event any) {
	select {
	case s.events <- event:
	case <-s.shutdown.Done():
	}
}

func (s *service) forward(ctx context.Context, publisher cdshim.Publisher) {
	ctx = context.WithoutCancel(ctx)
	defer publisher.Close()

	for {
		select {
		case event := <-s.events:
			s.publish(ctx, event)
		case <-s.shutdown.Done():
			s.drainEvents(ctx)
			return
		}
	}
}

func (s *service) drainEvents(ctx context.Context) {
	for {
		select {
		case event := <-s.events:
			s.publish(ctx, event)
		default:
			return
		}
	}
}

func (s *service) publish(ctx context.Context, event any) {
	topic := cdruntime.GetTopic(event)
	if err := s.publisher.Publish(ctx, topic, event); err != nil {
		log.G(ctx).WithError(err).WithField("topic", topic).Error("failed to publish event")
	}
}

func shimPid() uint32 {
	return uint32(os.Getpid())
}

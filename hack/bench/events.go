package main

import (
	"context"
	"fmt"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	eventsapi "github.com/containerd/containerd/api/services/events/v1"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/grpc"
)

// criNamespace is the containerd namespace of every CRI object.
const criNamespace = "k8s.io"

// exitEvent is a TaskExit event and the moment bench received it.
type exitEvent struct {
	containerID string
	// processID is the task's process ID: the container ID for its main process, the exec ID
	// for an exec.
	processID string
	exitedAt  time.Time
	received  time.Time
}

// exitEvents is a subscription to containerd's /tasks/exit events in the CRI namespace. It
// makes the Events service call that the containerd Go client's EventService().Subscribe makes,
// without the client package, whose dependencies are not in go.mod.
type exitEvents struct {
	events chan exitEvent
	cancel context.CancelFunc
	// errs receives the error that ended the subscription.
	errs chan error
}

func subscribeExits(ctx context.Context, conn *grpc.ClientConn) (*exitEvents, error) {
	ctx, cancel := context.WithCancel(namespaces.WithNamespace(ctx, criNamespace))
	stream, err := eventsapi.NewEventsClient(conn).Subscribe(ctx, &eventsapi.SubscribeRequest{
		Filters: []string{fmt.Sprintf(`namespace==%s,topic=="/tasks/exit"`, criNamespace)},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe to containerd's /tasks/exit events: %w", err)
	}

	e := &exitEvents{events: make(chan exitEvent, 1024), cancel: cancel, errs: make(chan error, 1)}
	go e.receive(ctx, stream)
	return e, nil
}

// receive forwards each event with the time it arrived, taken right after the stream returns
// it and before it is decoded.
func (e *exitEvents) receive(ctx context.Context, stream eventsapi.Events_SubscribeClient) {
	for {
		envelope, err := stream.Recv()
		received := time.Now()
		if err != nil {
			e.errs <- fmt.Errorf("the /tasks/exit event stream ended: %w", err)
			return
		}
		var exit apievents.TaskExit
		if err := envelope.GetEvent().UnmarshalTo(&exit); err != nil {
			e.errs <- fmt.Errorf("decode a %s event of type %s: %w", envelope.GetTopic(), envelope.GetEvent().GetTypeUrl(), err)
			return
		}
		event := exitEvent{
			containerID: exit.GetContainerID(),
			processID:   exit.GetID(),
			exitedAt:    exit.GetExitedAt().AsTime(),
			received:    received,
		}
		select {
		case e.events <- event:
		case <-ctx.Done():
			return
		}
	}
}

// waitMainExit returns the exit event of the container's main process. It drops the events of
// other containers and of execs.
func (e *exitEvents) waitMainExit(ctx context.Context, containerID string, timeout time.Duration) (exitEvent, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case event := <-e.events:
			if event.containerID == containerID && event.processID == containerID {
				return event, nil
			}
		case err := <-e.errs:
			return exitEvent{}, err
		case <-timer.C:
			return exitEvent{}, fmt.Errorf("no /tasks/exit event for container %s within %s", containerID, timeout)
		case <-ctx.Done():
			return exitEvent{}, ctx.Err()
		}
	}
}

func (e *exitEvents) close() {
	e.cancel()
}

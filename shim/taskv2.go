package shim

import (
	"context"

	taskv2 "github.com/containerd/containerd/api/runtime/task/v2"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	ptypes "github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/protobuf/proto"
)

// taskServiceV2 serves task API v2, which containerd 1.7 speaks, on the v3
// service. The messages of both versions have the same fields and wire format, so
// each call converts through the protobuf encoding.
type taskServiceV2 struct {
	s *service
}

var _ taskv2.TTRPCTaskService = taskServiceV2{}

// bridge converts req to the v3 request, calls fn, and converts its response back.
func bridge[Req3, Resp3 any, PReq3 interface {
	*Req3
	proto.Message
}, PResp3 interface {
	*Resp3
	proto.Message
}, Resp2 any, PResp2 interface {
	*Resp2
	proto.Message
}](ctx context.Context, req proto.Message, fn func(context.Context, PReq3) (PResp3, error)) (PResp2, error) {
	in := PReq3(new(Req3))
	if err := convertMessage(req, in); err != nil {
		return nil, err
	}

	resp, err := fn(ctx, in)
	if err != nil {
		return nil, err
	}

	out := PResp2(new(Resp2))
	if err := convertMessage(resp, out); err != nil {
		return nil, err
	}
	return out, nil
}

func convertMessage(from, to proto.Message) error {
	data, err := proto.Marshal(from)
	if err != nil {
		return errgrpc.ToGRPC(err)
	}
	return errgrpc.ToGRPC(proto.Unmarshal(data, to))
}

func (t taskServiceV2) State(ctx context.Context, r *taskv2.StateRequest) (*taskv2.StateResponse, error) {
	return bridge[taskAPI.StateRequest, taskAPI.StateResponse, *taskAPI.StateRequest, *taskAPI.StateResponse, taskv2.StateResponse](ctx, r, t.s.State)
}

func (t taskServiceV2) Create(ctx context.Context, r *taskv2.CreateTaskRequest) (*taskv2.CreateTaskResponse, error) {
	return bridge[taskAPI.CreateTaskRequest, taskAPI.CreateTaskResponse, *taskAPI.CreateTaskRequest, *taskAPI.CreateTaskResponse, taskv2.CreateTaskResponse](ctx, r, t.s.Create)
}

func (t taskServiceV2) Start(ctx context.Context, r *taskv2.StartRequest) (*taskv2.StartResponse, error) {
	return bridge[taskAPI.StartRequest, taskAPI.StartResponse, *taskAPI.StartRequest, *taskAPI.StartResponse, taskv2.StartResponse](ctx, r, t.s.Start)
}

func (t taskServiceV2) Delete(ctx context.Context, r *taskv2.DeleteRequest) (*taskv2.DeleteResponse, error) {
	return bridge[taskAPI.DeleteRequest, taskAPI.DeleteResponse, *taskAPI.DeleteRequest, *taskAPI.DeleteResponse, taskv2.DeleteResponse](ctx, r, t.s.Delete)
}

func (t taskServiceV2) Pids(ctx context.Context, r *taskv2.PidsRequest) (*taskv2.PidsResponse, error) {
	return bridge[taskAPI.PidsRequest, taskAPI.PidsResponse, *taskAPI.PidsRequest, *taskAPI.PidsResponse, taskv2.PidsResponse](ctx, r, t.s.Pids)
}

func (t taskServiceV2) Pause(ctx context.Context, r *taskv2.PauseRequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.PauseRequest, ptypes.Empty, *taskAPI.PauseRequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.Pause)
}

func (t taskServiceV2) Resume(ctx context.Context, r *taskv2.ResumeRequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.ResumeRequest, ptypes.Empty, *taskAPI.ResumeRequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.Resume)
}

func (t taskServiceV2) Checkpoint(ctx context.Context, r *taskv2.CheckpointTaskRequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.CheckpointTaskRequest, ptypes.Empty, *taskAPI.CheckpointTaskRequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.Checkpoint)
}

func (t taskServiceV2) Kill(ctx context.Context, r *taskv2.KillRequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.KillRequest, ptypes.Empty, *taskAPI.KillRequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.Kill)
}

func (t taskServiceV2) Exec(ctx context.Context, r *taskv2.ExecProcessRequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.ExecProcessRequest, ptypes.Empty, *taskAPI.ExecProcessRequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.Exec)
}

func (t taskServiceV2) ResizePty(ctx context.Context, r *taskv2.ResizePtyRequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.ResizePtyRequest, ptypes.Empty, *taskAPI.ResizePtyRequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.ResizePty)
}

func (t taskServiceV2) CloseIO(ctx context.Context, r *taskv2.CloseIORequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.CloseIORequest, ptypes.Empty, *taskAPI.CloseIORequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.CloseIO)
}

func (t taskServiceV2) Update(ctx context.Context, r *taskv2.UpdateTaskRequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.UpdateTaskRequest, ptypes.Empty, *taskAPI.UpdateTaskRequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.Update)
}

func (t taskServiceV2) Wait(ctx context.Context, r *taskv2.WaitRequest) (*taskv2.WaitResponse, error) {
	return bridge[taskAPI.WaitRequest, taskAPI.WaitResponse, *taskAPI.WaitRequest, *taskAPI.WaitResponse, taskv2.WaitResponse](ctx, r, t.s.Wait)
}

func (t taskServiceV2) Stats(ctx context.Context, r *taskv2.StatsRequest) (*taskv2.StatsResponse, error) {
	return bridge[taskAPI.StatsRequest, taskAPI.StatsResponse, *taskAPI.StatsRequest, *taskAPI.StatsResponse, taskv2.StatsResponse](ctx, r, t.s.Stats)
}

func (t taskServiceV2) Connect(ctx context.Context, r *taskv2.ConnectRequest) (*taskv2.ConnectResponse, error) {
	return bridge[taskAPI.ConnectRequest, taskAPI.ConnectResponse, *taskAPI.ConnectRequest, *taskAPI.ConnectResponse, taskv2.ConnectResponse](ctx, r, t.s.Connect)
}

func (t taskServiceV2) Shutdown(ctx context.Context, r *taskv2.ShutdownRequest) (*ptypes.Empty, error) {
	return bridge[taskAPI.ShutdownRequest, ptypes.Empty, *taskAPI.ShutdownRequest, *ptypes.Empty, ptypes.Empty](ctx, r, t.s.Shutdown)
}

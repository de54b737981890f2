// A minimal gRPC client for the benchmark, in Go like most workspace tooling
// that calls this service. Run inside the container's PID namespace; it
// times `rounds` repetitions of a sequence of calls over one connection and
// prints {"latencies":{rpc:[ms...]},"errors":[...]} on stdout.
//
// Requests are encoded by hand (protowire) from the few fields the bench
// uses, so no code generation is needed.
//
//	go-client SOCKET ROUNDS WARMUP CALLS_JSON
//	CALLS_JSON: [{"rpc":"MountProc","request":{"target":"/work/target","pid":1}}, ...]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec passes pre-encoded protobuf bytes through unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

type mapping struct {
	ContainerID uint64 `json:"containerId"`
	HostID      uint64 `json:"hostId"`
	Size        uint64 `json:"size"`
}

type request struct {
	Target  string    `json:"target"`
	Pid     int64     `json:"pid"`
	Gid     bool      `json:"gid"`
	Mapping []mapping `json:"mapping"`
}

type call struct {
	RPC     string  `json:"rpc"`
	Request request `json:"request"`
}

func encode(rpc string, r request) []byte {
	var b []byte
	switch rpc {
	case "MountProc", "UmountProc", "MountSysfs", "UmountSysfs":
		if r.Target != "" {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendString(b, r.Target)
		}
		if r.Pid != 0 {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(r.Pid))
		}
	case "WriteIDMapping":
		if r.Pid != 0 {
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(r.Pid))
		}
		if r.Gid {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, 1)
		}
		for _, m := range r.Mapping {
			var e []byte
			for i, v := range []uint64{m.ContainerID, m.HostID, m.Size} {
				if v != 0 {
					e = protowire.AppendTag(e, protowire.Number(i+1), protowire.VarintType)
					e = protowire.AppendVarint(e, v)
				}
			}
			b = protowire.AppendTag(b, 3, protowire.BytesType)
			b = protowire.AppendBytes(b, e)
		}
	}
	return b
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: go-client SOCKET ROUNDS WARMUP CALLS_JSON")
		os.Exit(2)
	}
	rounds, _ := strconv.Atoi(os.Args[2])
	warmup, _ := strconv.Atoi(os.Args[3])
	var calls []call
	if err := json.Unmarshal([]byte(os.Args[4]), &calls); err != nil {
		fmt.Fprintln(os.Stderr, "calls:", err)
		os.Exit(2)
	}
	conn, err := grpc.NewClient("unix://"+os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	reqs := make([][]byte, len(calls))
	for i, c := range calls {
		reqs[i] = encode(c.RPC, c.Request)
	}
	out := map[string][]float64{}
	errors := []string{}
	for r := 0; r < warmup+rounds; r++ {
		for i, c := range calls {
			var resp []byte
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			t0 := time.Now()
			err := conn.Invoke(ctx, "/iws.InWorkspaceService/"+c.RPC, &reqs[i], &resp)
			ms := float64(time.Since(t0).Nanoseconds()) / 1e6
			cancel()
			if err != nil {
				errors = append(errors, fmt.Sprintf("%s: %v", c.RPC, err))
			}
			if r >= warmup {
				out[c.RPC] = append(out[c.RPC], ms)
			}
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"latencies": out, "errors": errors})
}

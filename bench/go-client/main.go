// A minimal gRPC client for the benchmark, in Go like most workspace tooling
// that calls this service. Run inside the container's PID namespace; it
// times `rounds` repetitions of a sequence of calls over one connection and
// prints {"latencies":{rpc:[ms...]},"errors":[...],"wallMs":ms} on stdout.
//
// Requests are encoded by hand (protowire) from the few fields the bench
// uses, so no code generation is needed.
//
//	go-client SOCKET ROUNDS WARMUP CALLS_JSON [VALUES_JSON]
//	CALLS_JSON: [{"rpc":"MountProc","request":{"target":"/work/target","pid":1}}, ...]
//	(a call with "mayFail":true is timed but its error not counted)
//	VALUES_JSON: [pid, ...], one per round (warm-up included): a request
//	pid of -1 is replaced by the round's value.
//
// With IWSD_BENCH_WAIT=1 it prints "ready" and waits for a line on stdin
// before the first call (start storms start every client at once).
package main

import (
	"bufio"
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
	// MayFail: its error is not counted (e.g. a first call that only opens the connection).
	MayFail bool `json:"mayFail"`
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
	if len(os.Args) != 5 && len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: go-client SOCKET ROUNDS WARMUP CALLS_JSON [VALUES_JSON]")
		os.Exit(2)
	}
	rounds, _ := strconv.Atoi(os.Args[2])
	warmup, _ := strconv.Atoi(os.Args[3])
	var calls []call
	if err := json.Unmarshal([]byte(os.Args[4]), &calls); err != nil {
		fmt.Fprintln(os.Stderr, "calls:", err)
		os.Exit(2)
	}
	var values []int64
	if len(os.Args) == 6 {
		if err := json.Unmarshal([]byte(os.Args[5]), &values); err != nil {
			fmt.Fprintln(os.Stderr, "values:", err)
			os.Exit(2)
		}
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
	if os.Getenv("IWSD_BENCH_WAIT") == "1" {
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "waiting for the start signal:", err)
			os.Exit(1)
		}
	}
	out := map[string][]float64{}
	errors := []string{}
	start := time.Now()
	for r := 0; r < warmup+rounds; r++ {
		for i, c := range calls {
			req := reqs[i]
			if c.Request.Pid == -1 && r < len(values) {
				rc := c.Request
				rc.Pid = values[r]
				req = encode(c.RPC, rc)
			}
			var resp []byte
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			t0 := time.Now()
			err := conn.Invoke(ctx, "/iws.InWorkspaceService/"+c.RPC, &req, &resp)
			ms := float64(time.Since(t0).Nanoseconds()) / 1e6
			cancel()
			if err != nil && !c.MayFail {
				errors = append(errors, fmt.Sprintf("%s: %v", c.RPC, err))
			}
			if r >= warmup {
				out[c.RPC] = append(out[c.RPC], ms)
			}
		}
	}
	wall := float64(time.Since(start).Nanoseconds()) / 1e6
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"latencies": out, "errors": errors, "wallMs": wall})
}

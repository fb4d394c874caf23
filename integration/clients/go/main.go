// cri-go: a CRI (runtime.v1) client built on grpc-go and the k8s.io/cri-api stubs,
// dialing a unix socket the way the kubelet does. It runs a fixed sequence of CRI
// calls and prints one JSON line per step, so that a run straight against
// containerd and a run through pullgate can be compared line by line.
//
//	cri-go --endpoint SOCK --dial path|localhost --signed REF --unsigned REF --run-image REF
//	cri-go bench --endpoint SOCK --dial path|localhost --image REF   (bench.go)
//
// Each line is {"step", "code", "message", "result"}: code is the grpc-go
// codes.Code name, message the status message (empty on OK), result the step's
// normalised outcome (no IDs or timestamps; {} when the step has none or failed).
// A pod step whose input ID was never obtained prints code "Skipped" (the same
// transcript rules as integration/clients/python/cri_client.py). --run-image must
// be in containerd's store by the pod steps (pass --signed, which PullSigned
// pulled). The exit status is 0 when every step ran, whatever codes they returned.
//
// Built by integration/clients/go/build (GOPATH mode against Debian's packages).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Per-call deadlines: pulls fetch from the registry (and, through pullgate,
// verify signatures first); everything else is local to containerd.
const (
	pullTimeout = 120 * time.Second
	callTimeout = 60 * time.Second
	// concurrentCalls is the number of Version calls multiplexed on one channel.
	concurrentCalls = 64
)

// The pod is fixed so that two runs produce the same requests (and the same as
// integration/clients/python/cri_client.py); a run removes it again before it ends.
const (
	podName      = "real-client-pod"
	podUID       = "real-client-pod-uid"
	podNamespace = "pullgate-e2e"
)

// skipped is the code printed for a step that could not be attempted because an
// earlier step did not produce the ID it needs (not a gRPC code).
const skipped = "Skipped"

type options struct {
	endpoint string
	dial     string
	signed   string
	unsigned string
	runImage string
}

func parseOptions() (options, error) {
	var o options
	fs := flag.NewFlagSet("cri-go", flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", "", "CRI unix socket path")
	fs.StringVar(&o.dial, "dial", "path", "authority: path (the socket path, kubelet <= 1.29) or localhost (kubelet >= 1.30)")
	fs.StringVar(&o.signed, "signed", "", "image reference expected to be allowed")
	fs.StringVar(&o.unsigned, "unsigned", "", "image reference without a signature")
	fs.StringVar(&o.runImage, "run-image", "", "image the container runs")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for name, value := range map[string]string{"--endpoint": o.endpoint, "--signed": o.signed, "--unsigned": o.unsigned, "--run-image": o.runImage} {
		if value == "" {
			return o, fmt.Errorf("%s is required", name)
		}
	}
	if o.dial != "path" && o.dial != "localhost" {
		return o, fmt.Errorf("--dial must be path or localhost, not %q", o.dial)
	}
	return o, nil
}

// dial connects as the kubelet's remote runtime client does: the socket path is
// the target (so grpc-go's passthrough resolver makes it the :authority), the
// connection comes from a unix dialer, no TLS. kubelet 1.30+ overrides the
// authority with "localhost".
func dial(o options) (*grpc.ClientConn, error) {
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", addr)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(dialer),
	}
	if o.dial == "localhost" {
		opts = append(opts, grpc.WithAuthority("localhost"))
	}
	return grpc.Dial(o.endpoint, opts...)
}

type line struct {
	Step    string         `json:"step"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Result  map[string]any `json:"result"`
}

type printer struct{ enc *json.Encoder }

// emit prints one step's line; a nil result (a failed call, or a step with no
// outcome beyond its code) prints as {}.
func (p printer) emit(step string, err error, result map[string]any) error {
	st := status.Convert(err)
	if result == nil {
		result = map[string]any{}
	}
	return p.enc.Encode(line{Step: step, Code: st.Code().String(), Message: st.Message(), Result: result})
}

// skip prints the line of a step that was not attempted.
func (p printer) skip(step, reason string) error {
	return p.enc.Encode(line{Step: step, Code: skipped, Message: reason, Result: map[string]any{}})
}

// rawCodec sends and receives message bytes as they are, for methods that have no
// stub here. Named "proto" so that the content-type stays application/grpc+proto.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

func imageSpec(ref string) *runtime.ImageSpec { return &runtime.ImageSpec{Image: ref} }

func isDigestRef(ref string) bool {
	return strings.HasPrefix(ref, "sha256:") || strings.Contains(ref, "@sha256:")
}

// podConfig is a host-network pod (no CNI where this runs) without a hostname
// (runc refuses one in the host's UTS namespace).
func podConfig() *runtime.PodSandboxConfig {
	return &runtime.PodSandboxConfig{
		Metadata: &runtime.PodSandboxMetadata{Name: podName, Uid: podUID, Namespace: podNamespace},
		Linux: &runtime.LinuxPodSandboxConfig{
			SecurityContext: &runtime.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE},
			},
		},
	}
}

func run(o options) error {
	conn, err := dial(o)
	if err != nil {
		return fmt.Errorf("dial %s: %w", o.endpoint, err)
	}
	defer conn.Close()
	rt := runtime.NewRuntimeServiceClient(conn)
	img := runtime.NewImageServiceClient(conn)
	out := printer{json.NewEncoder(os.Stdout)}
	ctx := context.Background()
	call := func(timeout time.Duration) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, timeout)
	}
	steps := []func() error{
		func() error {
			c, cancel := call(callTimeout)
			defer cancel()
			r, err := rt.Version(c, &runtime.VersionRequest{Version: "v1"})
			var result map[string]any
			if err == nil {
				result = map[string]any{"runtime_name": r.RuntimeName, "runtime_api_version": r.RuntimeApiVersion}
			}
			return out.emit("Version", err, result)
		},
		func() error {
			c, cancel := call(callTimeout)
			defer cancel()
			r, err := rt.Status(c, &runtime.StatusRequest{})
			var result map[string]any
			if err == nil {
				ready := map[string]bool{}
				if r.Status != nil {
					for _, cond := range r.Status.Conditions {
						ready[cond.Type] = cond.Status
					}
				}
				result = map[string]any{
					"runtime_ready": ready[runtime.RuntimeReady],
					"network_ready": ready[runtime.NetworkReady],
				}
			}
			return out.emit("Status", err, result)
		},
		func() error {
			c, cancel := call(pullTimeout)
			defer cancel()
			r, err := img.PullImage(c, &runtime.PullImageRequest{Image: imageSpec(o.signed)})
			var result map[string]any
			if err == nil {
				result = map[string]any{"image_ref_is_digest": isDigestRef(r.ImageRef)}
			}
			return out.emit("PullSigned", err, result)
		},
		func() error {
			c, cancel := call(pullTimeout)
			defer cancel()
			_, err := img.PullImage(c, &runtime.PullImageRequest{Image: imageSpec(o.unsigned)})
			return out.emit("PullUnsigned", err, nil)
		},
		func() error {
			c, cancel := call(callTimeout)
			defer cancel()
			r, err := img.ImageStatus(c, &runtime.ImageStatusRequest{Image: imageSpec(o.signed)})
			var result map[string]any
			if err == nil {
				result = map[string]any{"present": r.Image != nil && r.Image.Id != ""}
			}
			return out.emit("ImageStatus", err, result)
		},
		func() error {
			c, cancel := call(callTimeout)
			defer cancel()
			r, err := img.ListImages(c, &runtime.ListImagesRequest{})
			var result map[string]any
			if err == nil {
				contains := false
				for _, image := range r.Images {
					for _, tag := range image.RepoTags {
						contains = contains || tag == o.signed
					}
				}
				result = map[string]any{"contains_signed": contains}
			}
			return out.emit("ListImages", err, result)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	if err := runPod(ctx, rt, o, out); err != nil {
		return err
	}
	if err := removeImage(ctx, img, o, out); err != nil {
		return err
	}
	if err := rawCalls(ctx, conn, out); err != nil {
		return err
	}
	return concurrent(ctx, rt, out)
}

// runPod runs --run-image in a pod, execs in it and removes both again. Every pod
// step prints a line: one whose input ID was never obtained prints code Skipped
// with a message naming the step that failed; the others are attempted, so the
// stop and remove steps still clean up.
func runPod(ctx context.Context, rt runtime.RuntimeServiceClient, o options, out printer) error {
	sandbox := podConfig()
	removeLeftoverPods(ctx, rt)
	c, cancel := context.WithTimeout(ctx, pullTimeout)
	pod, err := rt.RunPodSandbox(c, &runtime.RunPodSandboxRequest{Config: sandbox})
	cancel()
	if err := out.emit("RunPodSandbox", err, nil); err != nil {
		return err
	}
	podID, noPod := "", ""
	if err == nil {
		podID = pod.PodSandboxId
	} else {
		noPod = "needs the pod sandbox id; RunPodSandbox returned " + status.Code(err).String()
	}

	containerID, noContainer := "", noPod
	if podID == "" {
		if err := out.skip("CreateContainer", noPod); err != nil {
			return err
		}
	} else {
		c, cancel := context.WithTimeout(ctx, callTimeout)
		created, err := rt.CreateContainer(c, &runtime.CreateContainerRequest{
			PodSandboxId: podID,
			Config: &runtime.ContainerConfig{
				Metadata: &runtime.ContainerMetadata{Name: "c"},
				Image:    imageSpec(o.runImage),
				Command:  []string{"sh", "-c", "sleep 300"},
			},
			SandboxConfig: sandbox,
		})
		cancel()
		if err := out.emit("CreateContainer", err, nil); err != nil {
			return err
		}
		if err == nil {
			containerID = created.ContainerId
		} else {
			noContainer = "needs the container id; CreateContainer returned " + status.Code(err).String()
		}
	}

	steps := []struct {
		step    string
		id      string
		missing string
		call    func(context.Context) (map[string]any, error)
	}{
		{"StartContainer", containerID, noContainer, func(c context.Context) (map[string]any, error) {
			_, err := rt.StartContainer(c, &runtime.StartContainerRequest{ContainerId: containerID})
			return nil, err
		}},
		{"ExecSync", containerID, noContainer, func(c context.Context) (map[string]any, error) {
			r, err := rt.ExecSync(c, &runtime.ExecSyncRequest{ContainerId: containerID, Cmd: []string{"echo", "hello"}, Timeout: 10})
			if err != nil {
				return nil, err
			}
			return map[string]any{"stdout": string(r.Stdout), "exit_code": r.ExitCode}, nil
		}},
		// Timeout 0: the container's shell is PID 1 and ignores SIGTERM; waiting
		// for it would only add the grace period to every run.
		{"StopContainer", containerID, noContainer, func(c context.Context) (map[string]any, error) {
			_, err := rt.StopContainer(c, &runtime.StopContainerRequest{ContainerId: containerID})
			return nil, err
		}},
		{"RemoveContainer", containerID, noContainer, func(c context.Context) (map[string]any, error) {
			_, err := rt.RemoveContainer(c, &runtime.RemoveContainerRequest{ContainerId: containerID})
			return nil, err
		}},
		{"StopPodSandbox", podID, noPod, func(c context.Context) (map[string]any, error) {
			_, err := rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: podID})
			return nil, err
		}},
		{"RemovePodSandbox", podID, noPod, func(c context.Context) (map[string]any, error) {
			_, err := rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: podID})
			return nil, err
		}},
	}
	for _, s := range steps {
		var err error
		if s.id == "" {
			err = out.skip(s.step, s.missing)
		} else {
			c, cancel := context.WithTimeout(ctx, callTimeout)
			result, callErr := s.call(c)
			cancel()
			err = out.emit(s.step, callErr, result)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// removeLeftoverPods stops and removes a pod with this client's metadata left by
// an earlier run that died (containerd would refuse the name). It prints nothing
// on stdout: the transcript is the same with or without one.
func removeLeftoverPods(ctx context.Context, rt runtime.RuntimeServiceClient) {
	c, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	listed, err := rt.ListPodSandbox(c, &runtime.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, pod := range listed.Items {
		md := pod.Metadata
		if md == nil || md.Name != podName || md.Uid != podUID || md.Namespace != podNamespace {
			continue
		}
		fmt.Fprintf(os.Stderr, "cri-go: removing leftover pod sandbox %s\n", pod.Id)
		_, _ = rt.StopPodSandbox(c, &runtime.StopPodSandboxRequest{PodSandboxId: pod.Id})
		_, _ = rt.RemovePodSandbox(c, &runtime.RemovePodSandboxRequest{PodSandboxId: pod.Id})
	}
}

func removeImage(ctx context.Context, img runtime.ImageServiceClient, o options, out printer) error {
	c, cancel := context.WithTimeout(ctx, callTimeout)
	_, err := img.RemoveImage(c, &runtime.RemoveImageRequest{Image: imageSpec(o.signed)})
	cancel()
	if err := out.emit("RemoveImage", err, nil); err != nil {
		return err
	}
	c, cancel = context.WithTimeout(ctx, callTimeout)
	defer cancel()
	r, err := img.ImageStatus(c, &runtime.ImageStatusRequest{Image: imageSpec(o.signed)})
	var result map[string]any
	if err == nil {
		result = map[string]any{"present": r.Image != nil && r.Image.Id != ""}
	}
	return out.emit("ImageStatusAfterRemove", err, result)
}

// rawCalls invokes methods the stubs do not have: an unknown method of the CRI
// runtime service, and a containerd service that is not CRI at all.
func rawCalls(ctx context.Context, conn *grpc.ClientConn, out printer) error {
	for _, c := range []struct{ step, method string }{
		{"UnknownCriMethod", "/runtime.v1.RuntimeService/NoSuchMethod"},
		{"NonCriService", "/containerd.services.version.v1.Version/Version"},
	} {
		cc, cancel := context.WithTimeout(ctx, callTimeout)
		request, response := []byte{}, []byte{}
		err := conn.Invoke(cc, c.method, &request, &response, grpc.ForceCodec(rawCodec{}))
		cancel()
		if err := out.emit(c.step, err, nil); err != nil {
			return err
		}
	}
	return nil
}

// concurrent makes many Version calls at once on the one connection: HTTP/2
// streams multiplexed the way a busy kubelet does.
func concurrent(ctx context.Context, rt runtime.RuntimeServiceClient, out printer) error {
	c, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	var first error
	for i := 0; i < concurrentCalls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := rt.Version(c, &runtime.VersionRequest{Version: "v1"})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
			} else if first == nil {
				first = err
			}
		}()
	}
	wg.Wait()
	// The line's code is the first failure's, if any, so that a message explains
	// a short count.
	return out.emit("Concurrent64", first, map[string]any{"ok": ok})
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		benchMain(os.Args[2:])
		return
	}
	o, err := parseOptions()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cri-go: %v\n", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "cri-go: %v\n", err)
		os.Exit(1)
	}
}

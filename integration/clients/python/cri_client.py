"""A real gRPC C-core CRI client (Python grpcio) that runs one fixed scenario.

    python cri_client.py --endpoint /path/to.sock --signed REF --unsigned REF --run-image REF

It exists to check that pullgate serves clients other than our own tonic stack:
gRPC C-core dials `unix:/path` and sends the percent-encoded socket path as the
HTTP/2 :authority, which a strict server rejects. tests/real_clients.rs runs it
once directly against containerd and once through pullgate and compares the two
transcripts; the grpc-go client prints the same transcript for the same scenario.

Output: one JSON object per step on stdout,
    {"step": NAME, "code": CODE, "message": DETAILS, "result": {...}}
CODE is the gRPC status code in grpc-go spelling ("OK", "NotFound", ...), or
"Skipped" (see below); DETAILS is the status message, empty on OK. Results hold no
IDs or timestamps, so two runs against equivalent servers print the same lines.

Steps, in order: Version, Status, PullSigned, PullUnsigned, ImageStatus,
ListImages, RunPodSandbox, CreateContainer, StartContainer, ExecSync,
StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox, RemoveImage,
ImageStatusAfterRemove, UnknownCriMethod, NonCriService, Concurrent64.

Failures inside the pod steps keep the transcript aligned: every pod step is
printed. A step whose input ID was never obtained (everything after a failed
RunPodSandbox; the container steps after a failed CreateContainer) is printed
with code "Skipped", result {}, and a message naming the failed step and its code.
Every other step is attempted, so the stop/remove steps still clean up. A step
that did not return OK has result {}.

--run-image must already be in containerd's store when the pod steps run (pass
the same reference as --signed, which step PullSigned pulled); the client does
not pull it. --signed is matched against ListImages' repo_tags verbatim, so give
it in containerd's normalised form (host/repo:tag).

Before the pod steps the client quietly (stderr only) stops and removes a pod
with the same metadata left by an earlier run that died, since containerd would
otherwise refuse the name.

Exit status: 0 when every step ran (whatever codes they returned); non-zero only
when the client itself could not run (bad arguments, missing stubs).
"""

import argparse
import json
import os
import sys

import grpc

# setup generates the stubs into <venv>/stubs; PULLGATE_CRI_STUBS overrides.
sys.path.insert(0, os.environ.get("PULLGATE_CRI_STUBS", os.path.join(sys.prefix, "stubs")))
import api_pb2 as cri  # noqa: E402
import api_pb2_grpc as cri_grpc  # noqa: E402

# Per-call deadlines: pulls (and RunPodSandbox, which pulls the pause image) may go
# to the registry; everything else is local to containerd.
PULL_TIMEOUT_S = 60
CALL_TIMEOUT_S = 30
CONCURRENT_CALLS = 64

# grpc.StatusCode member name -> grpc-go's codes.Code String(), the spelling
# both clients print.
GO_CODE_NAMES = {
    "OK": "OK",
    "CANCELLED": "Canceled",
    "UNKNOWN": "Unknown",
    "INVALID_ARGUMENT": "InvalidArgument",
    "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "NOT_FOUND": "NotFound",
    "ALREADY_EXISTS": "AlreadyExists",
    "PERMISSION_DENIED": "PermissionDenied",
    "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "FAILED_PRECONDITION": "FailedPrecondition",
    "ABORTED": "Aborted",
    "OUT_OF_RANGE": "OutOfRange",
    "UNIMPLEMENTED": "Unimplemented",
    "INTERNAL": "Internal",
    "UNAVAILABLE": "Unavailable",
    "DATA_LOSS": "DataLoss",
    "UNAUTHENTICATED": "Unauthenticated",
}
SKIPPED = "Skipped"

POD_NAME = "real-client-pod"
POD_UID = "real-client-pod-uid"
POD_NAMESPACE = "pullgate-e2e"


class Outcome:
    """What one call returned: a grpc-go code name, the status details, and the
    response message (None unless OK)."""

    def __init__(self, code, message, response=None):
        self.code = code
        self.message = message
        self.response = response

    @property
    def ok(self):
        return self.code == "OK"


def code_name(status_code):
    return GO_CODE_NAMES[status_code.name]


def call(method, request, timeout=CALL_TIMEOUT_S):
    try:
        return Outcome("OK", "", method(request, timeout=timeout))
    except grpc.RpcError as err:
        return Outcome(code_name(err.code()), err.details() or "")


def skipped(reason):
    return Outcome(SKIPPED, reason)


def emit(step, outcome, result=None):
    line = {
        "step": step,
        "code": outcome.code,
        "message": outcome.message,
        "result": (result or {}) if outcome.ok else {},
    }
    print(json.dumps(line), flush=True)


def has_digest(image_ref):
    return image_ref.startswith("sha256:") or "@sha256:" in image_ref


def image_present(outcome):
    return outcome.ok and outcome.response.HasField("image") and outcome.response.image.id != ""


def pod_sandbox_config():
    # Host network: no CNI on the test machines. No hostname: runc refuses it
    # with the host's UTS namespace. Same as pod_config() in the test kit (pullgate_testkit::pod_config).
    return cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(
            name=POD_NAME, uid=POD_UID, namespace=POD_NAMESPACE, attempt=0
        ),
        linux=cri.LinuxPodSandboxConfig(
            security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NODE)
            )
        ),
    )


def remove_leftover_pods(runtime):
    """Stops and removes pods with our metadata from an earlier run that died.
    Prints nothing on stdout: the transcript is the same with or without one."""
    listed = call(runtime.ListPodSandbox, cri.ListPodSandboxRequest())
    if not listed.ok:
        return
    for pod in listed.response.items:
        md = pod.metadata
        if (md.name, md.uid, md.namespace) != (POD_NAME, POD_UID, POD_NAMESPACE):
            continue
        print(f"cri_client: removing leftover pod sandbox {pod.id}", file=sys.stderr)
        call(runtime.StopPodSandbox, cri.StopPodSandboxRequest(pod_sandbox_id=pod.id))
        call(runtime.RemovePodSandbox, cri.RemovePodSandboxRequest(pod_sandbox_id=pod.id))


def run_pod_steps(runtime, run_image):
    config = pod_sandbox_config()
    remove_leftover_pods(runtime)

    run = call(
        runtime.RunPodSandbox, cri.RunPodSandboxRequest(config=config), timeout=PULL_TIMEOUT_S
    )
    emit("RunPodSandbox", run)
    pod_id = run.response.pod_sandbox_id if run.ok else None
    no_pod = f"needs the pod sandbox id; RunPodSandbox returned {run.code}"

    if pod_id is None:
        create = skipped(no_pod)
    else:
        create = call(
            runtime.CreateContainer,
            cri.CreateContainerRequest(
                pod_sandbox_id=pod_id,
                config=cri.ContainerConfig(
                    metadata=cri.ContainerMetadata(name="c", attempt=0),
                    image=cri.ImageSpec(image=run_image),
                    command=["sh", "-c", "sleep 300"],
                ),
                sandbox_config=config,
            ),
        )
    emit("CreateContainer", create)
    container_id = create.response.container_id if create.ok else None
    no_container = (
        no_pod
        if pod_id is None
        else f"needs the container id; CreateContainer returned {create.code}"
    )

    def container_step(step, method, request, result=None):
        if container_id is None:
            outcome = skipped(no_container)
        else:
            outcome = call(method, request(container_id))
        emit(step, outcome, result(outcome) if result and outcome.ok else None)

    container_step(
        "StartContainer",
        runtime.StartContainer,
        lambda cid: cri.StartContainerRequest(container_id=cid),
    )
    container_step(
        "ExecSync",
        runtime.ExecSync,
        lambda cid: cri.ExecSyncRequest(container_id=cid, cmd=["echo", "hello"], timeout=10),
        lambda o: {
            "stdout": o.response.stdout.decode("utf-8", errors="replace"),
            "exit_code": o.response.exit_code,
        },
    )
    container_step(
        "StopContainer",
        runtime.StopContainer,
        lambda cid: cri.StopContainerRequest(container_id=cid, timeout=0),
    )
    container_step(
        "RemoveContainer",
        runtime.RemoveContainer,
        lambda cid: cri.RemoveContainerRequest(container_id=cid),
    )

    for step, method, request in (
        ("StopPodSandbox", runtime.StopPodSandbox, cri.StopPodSandboxRequest),
        ("RemovePodSandbox", runtime.RemovePodSandbox, cri.RemovePodSandboxRequest),
    ):
        if pod_id is None:
            outcome = skipped(no_pod)
        else:
            outcome = call(method, request(pod_sandbox_id=pod_id))
        emit(step, outcome)


def raw_unary(channel, method):
    """Calls `method` with an empty request body, bytes in and bytes out: no stub
    knows these methods."""
    stub = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    return call(stub, b"")


def concurrent_versions(runtime):
    futures = [
        runtime.Version.future(cri.VersionRequest(version="v1"), timeout=CALL_TIMEOUT_S)
        for _ in range(CONCURRENT_CALLS)
    ]
    outcomes = []
    for future in futures:
        try:
            future.result()
            outcomes.append(Outcome("OK", ""))
        except grpc.RpcError as err:
            outcomes.append(Outcome(code_name(err.code()), err.details() or ""))
    ok = sum(1 for o in outcomes if o.ok)
    # The step's code is OK when all succeeded, else the first failure's in call
    # order; the count is printed either way.
    first_failure = next((o for o in outcomes if not o.ok), None)
    summary = first_failure or Outcome("OK", "")
    line = {
        "step": "Concurrent64",
        "code": summary.code,
        "message": summary.message,
        "result": {"ok": ok},
    }
    print(json.dumps(line), flush=True)


def run(args):
    # Default channel options on purpose: C-core then sends the percent-encoded
    # socket path as :authority, which is what this client is here to exercise.
    with grpc.insecure_channel(f"unix:{args.endpoint}") as channel:
        runtime = cri_grpc.RuntimeServiceStub(channel)
        images = cri_grpc.ImageServiceStub(channel)

        version = call(runtime.Version, cri.VersionRequest(version="v1"))
        emit(
            "Version",
            version,
            version.ok
            and {
                "runtime_name": version.response.runtime_name,
                "runtime_api_version": version.response.runtime_api_version,
            },
        )

        status = call(runtime.Status, cri.StatusRequest())
        if status.ok:
            ready = {c.type: c.status for c in status.response.status.conditions}
            status_result = {
                "runtime_ready": ready.get("RuntimeReady", False),
                "network_ready": ready.get("NetworkReady", False),
            }
        else:
            status_result = None
        emit("Status", status, status_result)

        signed = cri.ImageSpec(image=args.signed)
        pull = call(images.PullImage, cri.PullImageRequest(image=signed), timeout=PULL_TIMEOUT_S)
        emit(
            "PullSigned",
            pull,
            pull.ok and {"image_ref_is_digest": has_digest(pull.response.image_ref)},
        )

        unsigned = call(
            images.PullImage,
            cri.PullImageRequest(image=cri.ImageSpec(image=args.unsigned)),
            timeout=PULL_TIMEOUT_S,
        )
        emit("PullUnsigned", unsigned)

        image_status = call(images.ImageStatus, cri.ImageStatusRequest(image=signed))
        emit("ImageStatus", image_status, {"present": image_present(image_status)})

        listed = call(images.ListImages, cri.ListImagesRequest())
        emit(
            "ListImages",
            listed,
            listed.ok
            and {
                "contains_signed": any(args.signed in i.repo_tags for i in listed.response.images)
            },
        )

        run_pod_steps(runtime, args.run_image)

        emit("RemoveImage", call(images.RemoveImage, cri.RemoveImageRequest(image=signed)))
        after = call(images.ImageStatus, cri.ImageStatusRequest(image=signed))
        emit("ImageStatusAfterRemove", after, {"present": image_present(after)})

        emit("UnknownCriMethod", raw_unary(channel, "/runtime.v1.RuntimeService/NoSuchMethod"))
        emit("NonCriService", raw_unary(channel, "/containerd.services.version.v1.Version/Version"))

        concurrent_versions(runtime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="path of the CRI unix socket")
    parser.add_argument("--signed", required=True, help="image reference expected to be allowed")
    parser.add_argument("--unsigned", required=True, help="image reference expected to be denied")
    parser.add_argument("--run-image", required=True, help="image the pod's container runs")
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())

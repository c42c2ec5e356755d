"""Deploying from the command line: ``ocibuild deploy IMAGE`` and what it shares with ``run``.

The deployer flags (``--namespace``, ``--no-wait``, ``--no-follow``, ``--dry-run``) are
deployer options by another name: each goes only to a deployer whose factory takes it, and
``--deployer-option K=V`` values are typed by the factory's annotations (:mod:`._convert`).
On a terminal the deployer's state changes (INFO records of ``ocibuild.deployers``) reach
stderr one line each. ``--json`` prints one object on stdout and sends the workload's output
to stderr; ``--dry-run`` prints the manifests the deployer would create, as YAML.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from ._options import (
    UsageError,
    add_registry_options,
    info_lines,
    parse_command,
    parse_pairs,
    registry_options,
)

__all__ = [
    "DeployerChoice",
    "add_deploy_command",
    "add_deployer_options",
    "choose_deployer",
    "cmd_deploy",
    "deploy_and_report",
]

# flag -> (the deployer parameter it sets, the value)
_FLAGS: Mapping[str, tuple[str, Any]] = {
    "--no-wait": ("wait", False),
    "--no-follow": ("stream_log", False),
    "--dry-run": ("dry_run", True),
}


def add_deployer_options(p: argparse.ArgumentParser) -> None:
    """``--deployer`` and the options ``run`` and ``deploy`` pass to it."""
    group = p.add_argument_group("deploy")
    group.add_argument(
        "--deployer",
        "-d",
        default="job",
        metavar="NAME",
        help="job (a Kubernetes Job; needs a cluster), trainjob, pytorchjob, tfjob (Kubeflow), "
        "serving (a Kubernetes Deployment and Service), kfserving (KServe), local (a quick "
        "check with this machine's Python, not a container), or a plugin's deployer, such as "
        "gcpjob and gcpserving (Vertex AI, from ocibuild-gcp) (default: job)",
    )
    group.add_argument(
        "--deployer-option",
        action="append",
        default=[],
        metavar="K=V",
        help="a deployer parameter, typed by the deployer's annotations: timeout=600, "
        'cleanup=always, labels=\'{"team": "ml"}\' (JSON for lists and mappings)',
    )
    group.add_argument("--namespace", "-n", metavar="NS", help="the Kubernetes namespace")
    group.add_argument("--no-wait", action="store_true", help="return once the workload is created")
    group.add_argument(
        "--no-follow", action="store_true", help="wait, but do not stream the workload's log"
    )
    group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the manifests the deployer would create (YAML) and create nothing",
    )


def add_deploy_command(subparsers: Any) -> None:
    """``ocibuild deploy IMAGE``: run an image that exists, without building."""
    p = subparsers.add_parser(
        "deploy",
        help="run an existing image with a deployer (no build)",
        description="Run IMAGE (REGISTRY/REPO[:TAG][@DIGEST]; a tag is resolved to its "
        "digest) as one container 'main' with --deployer, like 'kubectl run'.",
    )
    p.add_argument("image", metavar="IMAGE", help="the image, in a registry the cluster can reach")
    p.add_argument(
        "--cmd",
        metavar="CMD",
        help="the command to run, a JSON array or shell words (default: the image's "
        "entrypoint and cmd)",
    )
    p.add_argument("--env", "-e", action="append", default=[], metavar="K=V")
    p.add_argument("--json", action="store_true", help="print the workload as one JSON object")
    add_deployer_options(p)
    add_registry_options(p)
    p.set_defaults(func=cmd_deploy)


# A NamedTuple, not a dataclass: `ocibuild --help` imports this module, and dataclasses (with
# inspect) cost more than the rest of its start-up.
class DeployerChoice(NamedTuple):
    """The deployer made from the command line, and what its options say it will do."""

    deployer: Any
    name: str
    waits: bool  # deploy() returns once the workload ended, raising when it failed
    returns_early: bool  # told not to wait (wait=False): its state is worth printing
    dry_run: bool
    takes_log_stream: bool


def choose_deployer(args: argparse.Namespace) -> DeployerChoice:
    """The deployer ``--deployer`` names, with its typed options and the flags it takes."""
    from ..pipeline._plugins import lookup
    from ..pipeline._run import create
    from ._convert import Parameters

    params = Parameters(lookup("deployer", args.deployer))
    options = params.convert(
        parse_pairs(args.deployer_option, "deployer-option"), "deployer-option"
    )
    flags = {flag: setting for flag, setting in _FLAGS.items() if getattr(args, _dest(flag))}
    if args.namespace is not None:
        flags["--namespace"] = ("namespace", args.namespace)
    for flag, (name, value) in flags.items():
        if not params.takes(name):
            raise UsageError(
                f"{flag}: the deployer {args.deployer!r} has no {name!r} option "
                f"(its options: {', '.join(params.names) or 'none'})"
            )
        if name in options and options[name] != value:
            raise UsageError(f"{flag} contradicts --deployer-option {name}={options[name]!r}")
        options[name] = value
    takes_log_stream = params.takes("log_stream")
    if args.json and takes_log_stream:
        options.setdefault("log_stream", sys.stderr)
    deployer = create("deployer", args.deployer, options)

    def setting(name: str) -> bool | None:
        if name not in params.names:
            return None
        return bool(options.get(name, params.defaults.get(name)))

    waits = setting("wait")
    return DeployerChoice(
        deployer,
        args.deployer,
        waits=bool(waits),
        returns_early=waits is False,
        dry_run=bool(setting("dry_run")),
        takes_log_stream=takes_log_stream,
    )


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def deploy_and_report(
    args: argparse.Namespace, choice: DeployerChoice, image: str, deploy: Callable[[], Any]
) -> None:
    """Run ``deploy()`` (the handle), showing progress, then print what it made."""
    if choice.dry_run or args.json:
        print(image, file=sys.stderr, flush=True)  # stdout holds the YAML or the JSON
    else:
        print(image, flush=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(info_lines(args, "ocibuild.deployers"))
        if args.json and not choice.takes_log_stream:
            stack.enter_context(_stdout_to_stderr())
        handle = deploy()
    if choice.dry_run:
        manifests = getattr(handle, "manifests", None)
        if not isinstance(manifests, list):
            from ..pipeline._errors import DeployError

            raise DeployError(
                f"the deployer {choice.name!r} returned no manifests from a dry run "
                f"({type(handle).__name__} has no 'manifests' list)"
            )
    if args.json:
        print(json.dumps(_summary(handle, choice, image), indent=2))
    elif choice.dry_run:
        _print_yaml(handle.manifests)
    else:
        if choice.returns_early:
            summary = _summary(handle, choice, image)
            where = "/".join(str(summary[k]) for k in ("namespace", "name") if summary[k])
            print(" ".join(str(x) for x in (summary["kind"], where) if x) + f": {summary['state']}")
        url = getattr(handle, "url", None)
        if url:  # a server: where it answers, last, for a script to take
            print(url, flush=True)


def _summary(handle: Any, choice: DeployerChoice, image: str) -> dict[str, Any]:
    url = getattr(handle, "url", None)
    # A deploy that waited raised if the workload failed; and the job deployer has already
    # deleted a Job that succeeded (cleanup=True), so there is nothing left to ask. A server
    # (it has a URL) that waited is ready, and still there: ask it.
    ended = choice.waits and not choice.dry_run and url is None
    state = "Succeeded" if ended else handle.status().state
    out: dict[str, Any] = {
        "name": getattr(handle, "name", None),
        "namespace": getattr(handle, "namespace", None),
        "kind": getattr(handle, "kind", type(handle).__name__),
        "state": state,
        "image": getattr(handle, "image", image),
        "url": url,
    }
    if choice.dry_run:
        out["manifests"] = handle.manifests
    return out


def _print_yaml(manifests: list[dict[str, Any]]) -> None:
    # PyYAML comes with the kubernetes client (which the Kubernetes deployers need); no stubs.
    # A deployer that needs no kubernetes client (a plugin's) may run without it: then each
    # document is JSON, which is YAML too, after the same `---` separators.
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        text = "".join(f"---\n{json.dumps(m, indent=2)}\n" for m in manifests)
    else:
        text = yaml.safe_dump_all(manifests, explicit_start=True, sort_keys=False)
    sys.stdout.write(text)
    sys.stdout.flush()


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Everything written to stdout, by this process or its children, goes to stderr: for
    ``--json`` with a deployer that cannot be told where its output goes."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def cmd_deploy(args: argparse.Namespace) -> int:
    """``ocibuild deploy IMAGE``: resolve IMAGE to its digest and deploy it as it is."""
    from ..pipeline._plugins import get_plugins
    from ..pipeline._run import checked_handle

    choice = choose_deployer(args)
    image = pinned(args.image, args)
    pod_spec = pod_spec_for_image(
        image, parse_command(args.cmd, "cmd"), parse_pairs(args.env, "env")
    )

    def deploy() -> Any:
        get_plugins().hook.ocibuild_before_deploy(deployer=choice.deployer, image_ref=image)
        return checked_handle(choice.deployer, choice.deployer.deploy(pod_spec, None))

    deploy_and_report(args, choice, image, deploy)
    return 0


def pinned(image: str, args: argparse.Namespace) -> str:
    """``image`` pinned by digest: a tag is resolved through ocibuild's registry client."""
    from ..oci import Digest
    from ..transports import Location, open_source

    location = Location.parse(image)
    reference = location.reference
    if location.kind != "registry" or reference is None:
        raise UsageError(
            f"deploy runs an image from a registry (REGISTRY/REPO[:TAG][@DIGEST]), not {image}: "
            "copy it to one first (ocibuild copy)"
        )
    if reference.digest is not None:
        return str(reference)
    source = open_source(location, registry_options(args, image))
    try:
        data, _media_type = source.get_manifest()
    finally:
        source.close()
    # The digest of the bytes received, so the cluster runs what this answer named.
    return str(reference.with_digest(Digest.of(data)))


def pod_spec_for_image(
    image: str, command: list[str] | None, env: Mapping[str, str]
) -> dict[str, Any]:
    """One container ``main`` running ``image``; without ``command`` its own entrypoint."""
    from ..pipeline._context import RUNTIME_ENV

    container: dict[str, Any] = {"name": "main", "image": image}
    if command:
        container["command"] = command
    container["env"] = [{"name": k, "value": v} for k, v in {**RUNTIME_ENV, **env}.items()]
    return {"containers": [container]}

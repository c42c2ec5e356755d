"""Hostile registries: the retry budget bounds the whole command, and the error is one line.

Each server is real HTTP on loopback (the fault proxy in front of the real registry): one
that takes requests and never answers, one that drips its answers a byte at a time, one
that cuts every exchange mid-body, one that answers 503 to everything. Each command runs
with ``--retry-budget 3`` and must end within ``BOUND`` seconds (the budget, plus a generous
margin for start-up and for the one wait that may be under way when the budget runs out),
with a one-line error and no tag moved.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild._errors import InvalidOptionError
from ocibuild.registry import RegistryOptions
from tests.support import FaultProxy, Registry, skopeo_inspect

MakeProxy = Callable[[str], FaultProxy]

BUDGET = 3.0
BOUND = 15.0


def cli(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the real CLI with the budget; return the process and its wall time."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "ocibuild", *args, "--retry-budget", f"{BUDGET:g}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc, time.monotonic() - started


def assert_failed_in_one_line(proc: subprocess.CompletedProcess[str], elapsed: float) -> str:
    assert elapsed < BOUND, f"took {elapsed:.1f} s with a budget of {BUDGET:g} s"
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocibuild: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def tagged(registry: Registry, tmp_path: Path) -> tuple[str, str, Path]:
    """A fresh repository with tag 1 pushed directly: (repository, digest of tag 1, app dir)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('v1')\n")
    (app / "weights.bin").write_bytes(uuid.uuid4().bytes * 40_000)  # a chunked upload
    repository = f"hostile/app-{uuid.uuid4().hex[:8]}"
    dest = f"{registry.host}/{repository}:1"
    pushed = subprocess.run(
        [sys.executable, "-m", "ocibuild", "append", "--json", "--to", dest, f"{app}:/app"],
        capture_output=True,
        text=True,
        check=True,
    )
    (app / "main.py").write_text("print('v2')\n")  # what the hostile pushes try to tag
    return repository, json.loads(pushed.stdout)["digest"], app


def assert_tag_unmoved(registry: Registry, repository: str, digest: str) -> None:
    assert skopeo_inspect(f"docker://{registry.host}/{repository}:1")["Digest"] == digest


# -- a registry that takes requests and never answers ---------------------------------------


def test_a_silent_registry_costs_the_budget_not_a_minute(
    registry: Registry, make_fault_proxy: MakeProxy
) -> None:
    silent = make_fault_proxy(registry.url)
    silent.add_fault(action="stall", times=None)  # every request, the /v2/ ping included

    proc, elapsed = cli("inspect", f"{silent.host}/hostile/any:1")

    line = assert_failed_in_one_line(proc, elapsed)
    assert f"reaching registry {silent.host}" in line and "retry budget of 3 s" in line


@pytest.mark.parametrize(
    ("method", "path"),
    [("HEAD", "/blobs/"), ("POST", "/blobs/uploads/"), ("PATCH", "/blobs/uploads/"),
     ("PUT", "/manifests/")],
)  # fmt: skip
def test_a_registry_that_falls_silent_mid_push_keeps_the_tag(
    registry: Registry,
    make_fault_proxy: MakeProxy,
    tagged: tuple[str, str, Path],
    method: str,
    path: str,
) -> None:
    repository, digest, app = tagged
    proxy = make_fault_proxy(registry.url)
    proxy.add_fault(method=method, path_contains=path, action="stall", times=None)

    proc, elapsed = cli("append", "--to", f"{proxy.host}/{repository}:1", f"{app}:/app")

    line = assert_failed_in_one_line(proc, elapsed)
    assert "retry budget" in line
    assert_tag_unmoved(registry, repository, digest)


# -- a registry that drips its answers ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "head"), [("/manifests/", False), ("/manifests/", True), ("/blobs/", False)]
)
def test_a_dripped_answer_is_bounded_by_the_budget(
    registry: Registry,
    make_fault_proxy: MakeProxy,
    tagged: tuple[str, str, Path],
    path: str,
    head: bool,
) -> None:
    repository, _, _ = tagged
    drip = make_fault_proxy(registry.url)
    # A byte every 0.2 s: no single read ever waits long, the whole answer takes minutes.
    drip.add_fault(
        method="GET", path_contains=path, action="drip", interval=0.2, drip_head=head, times=None
    )

    proc, elapsed = cli("inspect", f"{drip.host}/{repository}:1")

    line = assert_failed_in_one_line(proc, elapsed)
    assert "retry budget" in line


# -- a registry that cuts every exchange mid-body --------------------------------------------


@pytest.mark.parametrize("path", ["/manifests/", "/blobs/"])
def test_answers_cut_mid_body_every_time_end_in_one_line(
    registry: Registry, make_fault_proxy: MakeProxy, tagged: tuple[str, str, Path], path: str
) -> None:
    repository, _, _ = tagged
    cut = make_fault_proxy(registry.url)
    cut.add_fault(method="GET", path_contains=path, action="cut", times=None)

    proc, elapsed = cli("inspect", f"{cut.host}/{repository}:1")

    line = assert_failed_in_one_line(proc, elapsed)
    assert "retry budget" in line
    assert "RemoteProtocolError" in line or "ReadError" in line


@pytest.mark.parametrize("method", ["HEAD", "POST", "PATCH", "PUT"])
def test_pushes_cut_mid_body_every_time_keep_the_tag(
    registry: Registry, make_fault_proxy: MakeProxy, tagged: tuple[str, str, Path], method: str
) -> None:
    repository, digest, app = tagged
    cut = make_fault_proxy(registry.url)
    cut.add_fault(method=method, action="cut", times=None)

    proc, elapsed = cli("append", "--to", f"{cut.host}/{repository}:1", f"{app}:/app")

    assert_failed_in_one_line(proc, elapsed)
    assert_tag_unmoved(registry, repository, digest)


@pytest.mark.parametrize("method", ["HEAD", "POST", "PATCH", "PUT"])
def test_one_cut_of_any_request_is_survived(
    registry: Registry,
    make_fault_proxy: MakeProxy,
    tagged: tuple[str, str, Path],
    method: str,
) -> None:
    repository, _, app = tagged
    cut = make_fault_proxy(registry.url)
    fault = cut.add_fault(method=method, action="cut")

    proc, _ = cli("append", "--json", "--to", f"{cut.host}/{repository}:1", f"{app}:/app")

    assert proc.returncode == 0, proc.stderr
    assert fault.hits == 1
    pushed = json.loads(proc.stdout)["digest"]
    assert skopeo_inspect(f"docker://{registry.host}/{repository}:1")["Digest"] == pushed


# -- a 503 storm ----------------------------------------------------------------------------


def test_a_503_storm_ends_within_the_budget(
    registry: Registry, make_fault_proxy: MakeProxy, tagged: tuple[str, str, Path]
) -> None:
    repository, digest, app = tagged
    storm = make_fault_proxy(registry.url)
    storm.add_fault(path_contains="/v2/", status=503, times=None)

    for args in (
        ("inspect", f"{storm.host}/{repository}:1"),
        ("append", "--to", f"{storm.host}/{repository}:1", f"{app}:/app"),
    ):
        proc, elapsed = cli(*args)
        line = assert_failed_in_one_line(proc, elapsed)
        assert "HTTP 503" in line and "retry budget of 3 s" in line
    assert_tag_unmoved(registry, repository, digest)


# -- budgets that cannot be ----------------------------------------------------------------


@pytest.mark.parametrize("budget", ["nan", "inf", "-1"])
def test_budgets_that_bound_nothing_are_refused(budget: str, registry: Registry) -> None:
    argv = ["inspect", f"{registry.host}/x:1", "--retry-budget", budget]
    proc = subprocess.run(
        [sys.executable, "-m", "ocibuild", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"ocibuild: error: --retry-budget must be a number of seconds, 0 or more (not "
        f"{float(budget)})"
    ]
    with pytest.raises(InvalidOptionError, match="retry_budget must be a finite number"):
        RegistryOptions(retry_budget=float(budget))

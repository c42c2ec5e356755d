"""`ocibuild append`, `copy` and `inspect` against a real registry, checked with skopeo."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    BaseInRegistry,
    FaultProxy,
    OCISchema,
    Registry,
    skopeo_copy,
    skopeo_inspect,
    umoci_unpack,
)
from tests.test_append import ocibuild


@pytest.fixture
def app(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "main.py").write_text("print('hi')\n")
    (root / "weights.bin").write_bytes(uuid.uuid4().bytes * 50_000)
    return root


def repo(registry: Registry, name: str) -> str:
    return f"{registry.host}/{name}-{uuid.uuid4().hex[:8]}"


def layers_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in report["blobs"] if b["kind"] == "layer"]


def test_push_mounts_base_layers_and_noop_rebuild_sends_nothing(
    registry: Registry, base_in_registry: BaseInRegistry, app: Path, cache_dir: Path
) -> None:
    dest = repo(registry, "app") + ":1"
    registry.mark()
    report = json.loads(
        ocibuild(
            "append", "--json", "--base", base_in_registry.oci, "--to", dest, f"{app}:/app"
        ).stdout
    )
    layers = layers_of(report)
    assert [b["outcome"] for b in layers] == ["mounted", "mounted", "uploaded"]
    assert layers[-1]["bytesSent"] == layers[-1]["size"] > 0
    requests = registry.requests(at_least=1)
    mounts = [r for r in requests if "mount=" in r.path]
    assert len(mounts) == 2 and {r.status for r in mounts} == {201}
    patched = [r for r in requests if r.method in ("PATCH", "PUT") and "/blobs/uploads/" in r.path]
    assert len(patched) <= 2 + 2  # the new layer and the config, never a base layer

    inspected = skopeo_inspect(f"docker://{dest}")
    assert inspected["Digest"] == report["digest"]
    assert len(inspected["Layers"]) == 3

    # Nothing changed: the layer cache knows the digest and HEAD finds every blob.
    again = json.loads(
        ocibuild(
            "append", "--json", "--base", base_in_registry.oci, "--to", dest, f"{app}:/app"
        ).stdout
    )
    assert again["digest"] == report["digest"]
    assert {b["outcome"] for b in again["blobs"]} == {"exists"}
    assert sum(b["bytesSent"] for b in again["blobs"]) == 0


def test_docker_base_stays_docker_unless_zstd(
    registry: Registry,
    base_in_registry: BaseInRegistry,
    app: Path,
    cache_dir: Path,
    oci_schema: OCISchema,
) -> None:
    dest = repo(registry, "docker")
    ocibuild("append", "--base", base_in_registry.docker, "--to", dest + ":gz", f"{app}:/app")
    raw = json.loads(skopeo_inspect(f"docker://{dest}:gz", raw=True))
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert {layer["mediaType"] for layer in raw["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    }
    oci_schema.validate_manifest(raw)
    ocibuild(
        "append",
        "--compression",
        "zstd",
        "--base",
        base_in_registry.docker,
        "--to",
        dest + ":zst",
        f"{app}:/app",
    )
    raw = json.loads(skopeo_inspect(f"docker://{dest}:zst", raw=True))
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert raw["layers"][-1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    oci_schema.validate_manifest(raw)


def test_copy_preserves_digests_between_transports(
    registry: Registry, base_in_registry: BaseInRegistry, tmp_path: Path, cache_dir: Path
) -> None:
    layout = tmp_path / "layout"
    first = json.loads(ocibuild("copy", "--json", base_in_registry.multi, f"oci:{layout}:m").stdout)
    assert first["digest"] == base_in_registry.multi_digest
    assert sorted(first["platforms"]) == ["linux/amd64", "linux/arm64"]
    back = repo(registry, "copied") + ":m"
    second = json.loads(ocibuild("copy", "--json", f"oci:{layout}:m", back).stdout)
    assert second["digest"] == base_in_registry.multi_digest
    assert skopeo_inspect(f"docker://{back}", raw=True)
    one = json.loads(
        ocibuild(
            "copy",
            "--json",
            "--platform",
            "linux/arm64",
            base_in_registry.multi,
            f"oci:{layout}:arm",
        ).stdout
    )
    assert one["digest"] == base_in_registry.platform_digests["linux/arm64"]
    rootfs = umoci_unpack(layout, "arm", tmp_path / "bundle")
    assert (rootfs / "bin" / "busybox").exists()


def test_copy_to_an_authenticated_registry(
    basic_registry: Registry,
    base_in_registry: BaseInRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cache_dir: Path,
) -> None:
    assert basic_registry.password is not None
    config = tmp_path / "docker"
    config.mkdir()
    token = base64.b64encode(f"{basic_registry.username}:{basic_registry.password}".encode())
    (config / "config.json").write_text(
        json.dumps({"auths": {basic_registry.host: {"auth": token.decode()}}})
    )
    dest = f"{basic_registry.host}/copied:1"
    proc = ocibuild("copy", base_in_registry.oci, dest, env={"DOCKER_CONFIG": str(config)})
    assert proc.stdout.strip() == f"{dest}@{base_in_registry.oci_digest}"
    assert skopeo_inspect(f"docker://{dest}", creds=basic_registry.creds)["Digest"] == (
        base_in_registry.oci_digest
    )
    denied = ocibuild(
        "copy",
        base_in_registry.oci,
        dest,
        check=False,
        env={"DOCKER_CONFIG": str(tmp_path / "empty")},
    )
    assert denied.returncode == 1
    assert len(denied.stderr.strip().splitlines()) == 1
    assert basic_registry.password not in denied.stderr


def test_inspect_registry_index_and_platform(base_in_registry: BaseInRegistry) -> None:
    report = json.loads(ocibuild("inspect", "--json", base_in_registry.multi).stdout)
    assert report["digest"] == base_in_registry.multi_digest
    assert len(report["manifest"]["manifests"]) == 2
    arm = json.loads(
        ocibuild("inspect", "--json", "--platform", "linux/arm64", base_in_registry.multi).stdout
    )
    assert arm["config"]["architecture"] == "arm64"
    assert arm["indexDigest"] == base_in_registry.multi_digest
    missing = ocibuild("inspect", f"{base_in_registry.host}/nothing/here:1", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_failed_push_never_moves_the_tag(
    registry: Registry,
    base_in_registry: BaseInRegistry,
    app: Path,
    cache_dir: Path,
    make_fault_proxy: Callable[[str], FaultProxy],
) -> None:
    name = repo(registry, "guarded")
    first = json.loads(
        ocibuild(
            "append", "--json", "--base", base_in_registry.oci, "--to", f"{name}:1", f"{app}:/app"
        ).stdout
    )
    proxy = make_fault_proxy(registry.url)
    proxy.add_fault(
        method="PUT", path_contains="/manifests/", action="status", status=500, times=None
    )
    (app / "main.py").write_text("print('changed')\n")
    via_proxy = name.replace(registry.host, proxy.host)
    failed = ocibuild(
        "append",
        "--base",
        base_in_registry.oci,
        "--to",
        f"{via_proxy}:1",
        f"{app}:/app",
        "--retry-budget",
        "2",
        check=False,
    )
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr and "500" in failed.stderr
    assert skopeo_inspect(f"docker://{name}:1")["Digest"] == first["digest"]


def test_dropped_upload_is_retried_to_success(
    registry: Registry, app: Path, cache_dir: Path, make_fault_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_fault_proxy(registry.url)
    proxy.add_fault(
        method="PATCH", path_contains="/blobs/uploads/", action="drop", after_bytes=1000, times=1
    )
    proxy.add_fault(
        method="PUT",
        path_contains="/blobs/uploads/",
        action="status",
        status=503,
        retry_after=0,
        times=1,
    )
    dest = f"{proxy.host}/flaky-{uuid.uuid4().hex[:8]}:1"
    report = json.loads(ocibuild("append", "--json", "--to", dest, f"{app}:/app").stdout)
    direct = dest.replace(proxy.host, registry.host)
    assert skopeo_inspect(f"docker://{direct}")["Digest"] == report["digest"]
    skopeo_copy(f"docker://{direct}", f"oci:{app.parent / 'copy'}:t")


_PUSH_CHILD = """
import sys
from ocibuild.cli import main
status = main(sys.argv[1:])
# VmHWM, not getrusage: ru_maxrss survives exec and so counts the forking parent's pages.
with open("/proc/self/status") as f:
    print(next(line.split()[1] for line in f if line.startswith("VmHWM:")), file=sys.stderr)
sys.exit(status)
"""


@pytest.mark.slow
def test_pushing_a_large_layer_keeps_memory_flat(registry: Registry, tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "weights"
    data.mkdir()
    with open(data / "w.bin", "wb") as f:
        for _ in range(48):
            f.write(os.urandom(8 << 20))  # 384 MiB that gzip cannot shrink
    dest = repo(registry, "big") + ":1"
    done = subprocess.run(
        [sys.executable, "-c", _PUSH_CHILD, "append", "--json", "--to", dest, f"{data}:/w"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB"
    report = json.loads(done.stdout)
    assert skopeo_inspect(f"docker://{dest}")["Digest"] == report["digest"]


@pytest.mark.parametrize("host", ["127.0.0.1:1", "no-such-registry.invalid"])
def test_an_unreachable_registry_fails_at_once_in_one_line(app: Path, host: str) -> None:
    started = time.monotonic()
    proc = ocibuild("append", "--to", f"{host}/app:1", f"{app}:/app", check=False)
    assert time.monotonic() - started < 30.0  # the default budget is 120 s: none of it is spent
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"ocibuild: error: cannot reach {host}: ")
    assert "Traceback" not in proc.stderr


def test_a_bad_retry_budget_in_the_environment_is_one_line(app: Path, registry: Registry) -> None:
    proc = ocibuild(
        "append",
        "--to",
        repo(registry, "budget"),
        f"{app}:/app",
        env={"OCIBUILD_RETRY_BUDGET": "-1"},
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "ocibuild: error: $OCIBUILD_RETRY_BUDGET='-1': give a number of seconds, 0 or more, "
        "or unset it"
    )

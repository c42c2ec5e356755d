"""``docker-daemon:NAME[:TAG]``: images loaded into a real engine and read back from it.

Every write goes through the CLI (``append --to``, ``copy SRC docker-daemon:...``) and is checked
with the engine's own tools (its CLI's ``save``, ``create`` + ``export``, ``run``) and skopeo:
the image ID ocibuild reports is the engine's, the layers read back are the ones the engine
saves, and the file tree read back is the one a container of the image sees.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

import ocibuild
from ocibuild import InvalidReferenceError
from ocibuild.transports import Location
from tests.support import BaseImage, skopeo_inspect
from tests.support._engines import RunningEngine

pytestmark = pytest.mark.xdist_group("docker")

# What an engine adds to every container's file tree, whatever the image holds.
ENGINE_ADDED = {".dockerenv", "dev", "etc/hostname", "etc/hosts", "etc/resolv.conf", "proc", "sys"}
ENGINE_ADDED |= {"run", "run/.containerenv", "etc/mtab"}  # podman's, on top


def ocibuild_cli(
    *args: str, engine: RunningEngine | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child, dialling ``engine`` (its DOCKER_HOST) or as ``env`` says."""
    child = {**os.environ, **(engine.env if engine else {}), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args],
        capture_output=True,
        text=True,
        env=child,
        timeout=300,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "hello.txt").write_text("hello from the engine\n")
    (directory / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (directory / "run.sh").chmod(0o755)
    return directory


def layout_manifest(layout: Path, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest and config of ``layout:tag`` as stored."""
    index = json.loads((layout / "index.json").read_text())
    [entry] = [
        m
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == tag
    ]
    manifest = json.loads(_blob(layout, entry["digest"]))
    return manifest, json.loads(_blob(layout, manifest["config"]["digest"]))


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def tar_tree(tar: tarfile.TarFile, into: dict[str, str]) -> dict[str, str]:
    """Each member of ``tar`` into ``into``: a file's sha256 and mode, a link's target, "dir"."""
    for member in tar:
        name = member.name.removeprefix("./").rstrip("/")
        if name in ("", "."):
            continue
        if member.issym():
            into[name] = f"-> {member.linkname}"
        elif member.isdir():
            into[name] = "dir"
        elif member.isfile():
            data = tar.extractfile(member)
            assert data is not None
            into[name] = f"{hashlib.sha256(data.read()).hexdigest()} {oct(member.mode & 0o777)}"
    return into


def layers_tree(layout: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """The file tree of a layout image's (plain, whiteout-free) layers, applied in order."""
    found: dict[str, str] = {}
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(_blob(layout, layer["digest"]))) as tar:
            tar_tree(tar, found)
    return found


def exported_tree(engine: RunningEngine, image: str) -> dict[str, str]:
    """The file tree a container of ``image`` sees, as the engine exports it."""
    container = engine.command("create", image).stdout.strip()
    try:
        proc = subprocess.run(
            [*engine.cli, "export", container], capture_output=True, env=engine.env, check=True
        )
    finally:
        engine.command("rm", "-f", container)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        found = tar_tree(tar, {})
    return {
        name: entry
        for name, entry in found.items()
        if name not in ENGINE_ADDED and name.split("/")[0] not in ("dev", "proc", "sys")
    }


# --- the spelling ----------------------------------------------------------------------------


HEX = "ab" * 32


@pytest.mark.parametrize(
    ("text", "path", "tag"),
    [
        ("docker-daemon:app:1", "app", "1"),
        ("docker-daemon:app", "app", None),
        ("docker-daemon:localhost:5000/team/app:2", "localhost:5000/team/app", "2"),
        ("docker-daemon:localhost:5000/app", "localhost:5000/app", None),
        (f"docker-daemon:sha256:{HEX}", f"sha256:{HEX}", None),
        (f"docker-daemon:app@sha256:{HEX}", f"app@sha256:{HEX}", None),
    ],
)
def test_the_spelling_names_an_image_as_the_engine_does(text: str, path: str, tag: str) -> None:
    location = Location.parse(text)
    assert (location.kind, location.path, location.tag, str(location)) == (
        "docker-daemon",
        path,
        tag,
        text,
    )


@pytest.mark.parametrize("text", ["docker-daemon:", "docker-daemon:App:1", "docker-daemon:a:b:c"])
def test_a_bad_name_is_refused_with_the_form(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match=r"write docker-daemon:NAME\[:TAG\]"):
        Location.parse(text)


def test_an_image_cannot_be_written_under_a_digest_or_an_id(base_layout: BaseImage) -> None:
    image = ocibuild.Image.load(base_layout.ref)
    for dest in (f"docker-daemon:app@sha256:{HEX}", f"docker-daemon:sha256:{HEX}"):
        with pytest.raises(InvalidReferenceError, match=r"an engine names what it loads by NAME"):
            ocibuild.write(image, dest)


# --- no engine -------------------------------------------------------------------------------


def test_a_missing_engine_is_one_line_naming_the_socket_and_docker_host(
    tmp_path: Path, base_layout: BaseImage, app: Path
) -> None:
    socket = tmp_path / "no-engine" / "docker.sock"
    env = {"DOCKER_HOST": f"unix://{socket}"}
    expected = (
        f"ocibuild: error: cannot reach a docker engine at unix://{socket} (DOCKER_HOST): no "
        "such socket; start the engine, or point DOCKER_HOST at a running engine "
        "(unix:///PATH/docker.sock, or tcp://HOST:PORT with DOCKER_TLS_VERIFY=1 and "
        "DOCKER_CERT_PATH)"
    )
    for args in (
        ["append", "--base", base_layout.ref, "--to", "docker-daemon:app:1", f"{app}:/app"],
        ["append", "--base", "docker-daemon:base:1", "--to", f"oci:{tmp_path}/out:1", str(app)],
        ["copy", base_layout.ref, "docker-daemon:base:1"],
        ["copy", "docker-daemon:base:1", f"oci:{tmp_path}/out:1"],
    ):
        proc = ocibuild_cli(*args, env=env)
        assert proc.returncode == 1, proc
        assert proc.stderr.strip() == expected
    assert not (tmp_path / "out").exists()


# --- round trips through the real engines ----------------------------------------------------


def test_append_loads_the_image_and_reports_its_id(
    engine: RunningEngine, base_layout: BaseImage, app: Path, tmp_path: Path
) -> None:
    name = f"ocibuild-test/appended:{engine.kind}"
    reported = ok(
        ocibuild_cli(
            "append",
            "--base",
            base_layout.ref,
            "--to",
            f"docker-daemon:{name}",
            f"{app}:/app",
            engine=engine,
        )
    )
    image_id = engine.image_id(name)
    assert reported == f"docker-daemon:{name}@{image_id}"
    # The same append into a layout writes the same config: the image ID is its digest.
    ok(
        ocibuild_cli(
            "append", "--base", base_layout.ref, "--to", f"oci:{tmp_path}/same:1", f"{app}:/app"
        )
    )
    manifest, _ = layout_manifest(tmp_path / "same", "1")
    assert manifest["config"]["digest"] == image_id
    assert engine.run(name, "cat /app/hello.txt && /app/run.sh") == "hello from the engine\nran\n"


def test_what_is_read_back_is_what_the_engine_saves_and_runs(
    engine: RunningEngine, base_layout: BaseImage, app: Path, tmp_path: Path
) -> None:
    name = f"ocibuild-test/round-trip:{engine.kind}"
    ok(
        ocibuild_cli(
            "append",
            "--base",
            base_layout.ref,
            "--to",
            f"docker-daemon:{name}",
            f"{app}:/app",
            engine=engine,
        )
    )
    back = tmp_path / "back"
    ok(ocibuild_cli("copy", f"docker-daemon:{name}", f"oci:{back}:1", engine=engine))
    manifest, config = layout_manifest(back, "1")

    # What the engine's own save gives, as skopeo reads it: the same config, the same layers.
    saved = engine.save(name, tmp_path / "saved.tar")
    skopeo_manifest = json.loads(skopeo_inspect(f"docker-archive:{saved}", raw=True))
    assert manifest["config"]["digest"] == engine.image_id(name)
    assert skopeo_manifest["config"]["digest"] == manifest["config"]["digest"]
    layers = [layer["digest"] for layer in manifest["layers"]]
    assert layers == [layer["digest"] for layer in skopeo_manifest["layers"]]
    assert layers == config["rootfs"]["diff_ids"]  # plain tars

    # The file tree read back is the one a container of the image sees.
    files = layers_tree(back, manifest)
    assert files == exported_tree(engine, name)
    hello = hashlib.sha256(b"hello from the engine\n").hexdigest()
    assert files["app/hello.txt"] == f"{hello} 0o644" and files["app/run.sh"].endswith(" 0o755")


def test_a_base_from_the_engine_is_extended_and_loaded_again(
    engine: RunningEngine, base_layout: BaseImage, app: Path, tmp_path: Path
) -> None:
    first, second = f"ocibuild-test/base:{engine.kind}", f"ocibuild-test/extended:{engine.kind}"
    ok(ocibuild_cli("copy", base_layout.ref, f"docker-daemon:{first}", engine=engine))
    more = tmp_path / "more"
    more.mkdir()
    (more / "extra.txt").write_text("one more layer\n")
    spools = tmp_path / "tmp"
    spools.mkdir()
    ok(
        ocibuild_cli(
            "append",
            "--base",
            f"docker-daemon:{first}",
            "--to",
            f"docker-daemon:{second}",
            f"{more}:/more",
            engine=engine,
            env={"TMPDIR": str(spools)},
        )
    )
    assert not list(spools.iterdir())  # the base's spooled archive went with the process
    inspect = json.loads(engine.command("image", "inspect", first, second).stdout)
    assert inspect[1]["RootFS"]["Layers"][:-1] == inspect[0]["RootFS"]["Layers"]
    assert len(inspect[1]["RootFS"]["Layers"]) == base_layout.layers + 1
    assert engine.run(second, "cat /more/extra.txt && hello") == (
        "one more layer\nhello from the ocibuild test base\n"
    )


def test_a_copy_in_keeps_the_image_id_gzip_or_zstd(
    engine: RunningEngine, base_layout: BaseImage, app: Path, tmp_path: Path
) -> None:
    name = f"ocibuild-test/copied:{engine.kind}"
    reported = ok(ocibuild_cli("copy", base_layout.ref, f"docker-daemon:{name}", engine=engine))
    assert reported == f"docker-daemon:{name}@{base_layout.manifest['config']['digest']}"
    assert engine.image_id(name) == base_layout.manifest["config"]["digest"]
    # zstd layers (which dockerd 20.10 cannot unpack) go in as their plain tars.
    ok(
        ocibuild_cli(
            "append",
            "--base",
            base_layout.ref,
            "--compression",
            "zstd",
            "--to",
            f"oci:{tmp_path}/zstd:1",
            f"{app}:/app",
        )
    )
    manifest, _ = layout_manifest(tmp_path / "zstd", "1")
    assert {layer["mediaType"] for layer in manifest["layers"][-1:]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    zstd_name = f"ocibuild-test/zstd:{engine.kind}"
    reported = ok(
        ocibuild_cli("copy", f"oci:{tmp_path}/zstd:1", f"docker-daemon:{zstd_name}", engine=engine)
    )
    assert reported == f"docker-daemon:{zstd_name}@{manifest['config']['digest']}"
    assert engine.run(zstd_name, "cat /app/hello.txt") == "hello from the engine\n"


def test_the_library_write_reports_the_config_digest(
    dockerd: RunningEngine, base_layout: BaseImage, app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    image = ocibuild.Image.load(base_layout.ref).append(ocibuild.FileTreeLayer([f"{app}:/app"]))
    result = ocibuild.write(image, "docker-daemon:ocibuild-test/library")
    assert result.digest == ocibuild.Digest.parse(
        dockerd.image_id("ocibuild-test/library:latest") or ""
    )
    assert result.reference == f"docker-daemon:ocibuild-test/library@{result.digest}"


# --- failures leave nothing ------------------------------------------------------------------


def corrupt_copy(base_layout: BaseImage, dest: Path) -> None:
    """The base layout with the last byte of its biggest layer flipped: the copy fails at the
    end of that layer, after most of it went to the engine."""
    shutil.copytree(base_layout.path, dest)
    layers = base_layout.manifest["layers"]
    biggest = max(layers, key=lambda layer: layer["size"])
    blob = dest / "blobs" / "sha256" / biggest["digest"].split(":", 1)[1]
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))


def wrong_diff_id_copy(base_layout: BaseImage, dest: Path) -> str:
    """The base layout with a config whose first diff_id names other content: a copy cannot
    see it (layers are not unpacked on the way), the engine checks it."""
    shutil.copytree(base_layout.path, dest)
    config = dict(base_layout.config)
    rootfs = dict(config["rootfs"])
    rootfs["diff_ids"] = ["sha256:" + "0" * 64, *rootfs["diff_ids"][1:]]
    config["rootfs"] = rootfs
    config_bytes = json.dumps(config).encode()
    manifest = dict(base_layout.manifest)
    manifest["config"] = {
        **manifest["config"],
        "digest": _store(dest, config_bytes),
        "size": len(config_bytes),
    }
    manifest_bytes = json.dumps(manifest).encode()
    index = json.loads((dest / "index.json").read_text())
    index["manifests"][0].update(digest=_store(dest, manifest_bytes), size=len(manifest_bytes))
    (dest / "index.json").write_text(json.dumps(index))
    return str(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])


def _store(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def images(engine: RunningEngine) -> list[str]:
    return sorted(
        engine.command("images", "-a", "--no-trunc", "--format", "{{.ID}}").stdout.split()
    )


def test_a_load_cut_short_or_refused_leaves_no_image(
    engine: RunningEngine, base_layout: BaseImage, tmp_path: Path
) -> None:
    before = images(engine)
    corrupt_copy(base_layout, tmp_path / "corrupt")
    name = f"ocibuild-test/broken:{engine.kind}"
    proc = ocibuild_cli(
        "copy", f"oci:{tmp_path}/corrupt:{base_layout.tag}", f"docker-daemon:{name}", engine=engine
    )
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "ocibuild: error: " in proc.stderr and "sha256" in proc.stderr
    assert engine.image_id(name) is None

    tag = wrong_diff_id_copy(base_layout, tmp_path / "lying")
    proc = ocibuild_cli(
        "copy", f"oci:{tmp_path}/lying:{tag}", f"docker-daemon:{name}", engine=engine
    )
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"the docker engine at {engine.host} refused docker-daemon:{name}" in proc.stderr
    assert engine.image_id(name) is None
    assert images(engine) == before


def test_reading_an_image_the_engine_lacks_is_one_line(
    engine: RunningEngine, tmp_path: Path
) -> None:
    proc = ocibuild_cli(
        "copy", "docker-daemon:ocibuild-test/absent:1", f"oci:{tmp_path}/x:1", engine=engine
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"ocibuild: error: the docker engine at {engine.host} has no image "
        "'ocibuild-test/absent:1'; load one (ocibuild copy SRC "
        "docker-daemon:ocibuild-test/absent:1) or check DOCKER_HOST"
    )

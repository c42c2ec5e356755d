"""`ocibuild append` end to end, offline: into OCI layouts and docker-archives, read back by
skopeo and umoci, validated against the OCI schemas."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from ocibuild.cli._main import main
from tests.support import (
    BaseImage,
    BaseInRegistry,
    DockerArchive,
    OCISchema,
    skopeo_copy,
    skopeo_inspect,
    umoci_unpack,
)


def ocibuild(
    *args: str, env: dict[str, str] | None = None, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child interpreter."""
    proc = subprocess.run(
        [sys.executable, "-m", "ocibuild", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ocibuild {' '.join(args)} failed:\n{proc.stderr}")
    return proc


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A small source tree with the cases that matter: nesting, exec bits, links."""
    root = tmp_path / "app"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "main.py").write_text("print('hello from the image')\n")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "data.bin").write_bytes(os.urandom(200_000))
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
    (root / "link-to-main").symlink_to("main.py")
    os.link(root / "main.py", root / "pkg" / "hardlinked.py")
    (root / "skip.pyc").write_bytes(b"junk")
    return root


def layout_manifest(layout: Path, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    index = json.loads((layout / "index.json").read_text())
    [desc] = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    manifest = json.loads(blob(layout, desc["digest"]))
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    return manifest, config


def blob(layout: Path, digest: str) -> bytes:
    algo, hexpart = digest.split(":")
    return (layout / "blobs" / algo / hexpart).read_bytes()


def test_append_from_scratch_reads_back_exactly(
    tmp_path: Path, app: Path, cache_dir: Path, oci_schema: OCISchema
) -> None:
    out = tmp_path / "out"
    result = main(
        [
            "append",
            "--to",
            f"oci:{out}:v1",
            f"{app}:/app",
            "--exclude",
            "*.pyc",
            "--entrypoint",
            '["sh", "/app/run.sh"]',
            "--env",
            "A=1",
            "--workdir",
            "/app",
            "--label",
            "team=ml",
            "--annotation",
            "org.example=yes",
        ]
    )
    assert result == 0
    oci_schema.validate_layout_dir(out)
    manifest, config = layout_manifest(out, "v1")
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["annotations"]["org.example"] == "yes"
    assert len(manifest["layers"]) == 1
    assert config["config"]["Entrypoint"] == ["sh", "/app/run.sh"]
    assert config["config"]["Env"] == ["A=1"]
    assert config["config"]["WorkingDir"] == "/app"
    assert config["config"]["Labels"] == {"team": "ml"}
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert len(config["history"]) == 1

    # skopeo agrees on the digest; umoci extracts exactly our tree.
    inspected = skopeo_inspect(f"oci:{out}:v1")
    assert inspected["Digest"] == result_digest(out, "v1")
    rootfs = umoci_unpack(out, "v1", tmp_path / "bundle")
    assert (rootfs / "app/main.py").read_text() == "print('hello from the image')\n"
    assert (rootfs / "app/pkg/sub/data.bin").read_bytes() == (app / "pkg/sub/data.bin").read_bytes()
    assert os.stat(rootfs / "app/run.sh").st_mode & 0o777 == 0o755
    assert os.readlink(rootfs / "app/link-to-main") == "main.py"
    assert (
        os.stat(rootfs / "app/main.py").st_ino == os.stat(rootfs / "app/pkg/hardlinked.py").st_ino
    )
    assert not (rootfs / "app/skip.pyc").exists()

    # The layer's diff_id is the sha256 of the uncompressed tar, and it is reproducible.
    layer = blob(out, manifest["layers"][0]["digest"])
    tar_bytes = gzip.decompress(layer)
    import hashlib

    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {m.mtime for m in members} == {0} and {m.uid for m in members} == {0}
    assert {m.uname for m in members} == {""}


def result_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    [desc] = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    digest: str = desc["digest"]
    return digest


def test_append_is_reproducible_across_touch_and_machines(
    tmp_path: Path, app: Path, cache_dir: Path
) -> None:
    first = ocibuild("append", "--json", "--to", f"oci:{tmp_path / 'a'}:t", f"{app}:/app")
    for path in app.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (1_700_000_000, 1_700_000_000))
    second = ocibuild(
        "append", "--json", "--no-cache", "--to", f"oci:{tmp_path / 'b'}:t", f"{app}:/app"
    )
    assert json.loads(first.stdout)["digest"] == json.loads(second.stdout)["digest"]
    dated = ocibuild(
        "append",
        "--json",
        "--to",
        f"oci:{tmp_path / 'c'}:t",
        f"{app}:/app",
        env={"SOURCE_DATE_EPOCH": "1700000000"},
    )
    assert json.loads(dated.stdout)["digest"] != json.loads(first.stdout)["digest"]


def test_append_onto_base_layout_keeps_base_and_names_no_path(
    tmp_path: Path, app: Path, base_layout: BaseImage, cache_dir: Path, oci_schema: OCISchema
) -> None:
    out = tmp_path / "out"
    proc = ocibuild(
        "append",
        "--json",
        "--base",
        base_layout.ref,
        "--to",
        f"oci:{out}:app",
        f"{app}/main.py:/srv/",
        "--cmd",
        "python /srv/main.py",
    )
    report = json.loads(proc.stdout)
    oci_schema.validate_layout_dir(out)
    manifest, config = layout_manifest(out, "app")
    base_manifest = base_layout.manifest
    assert manifest["layers"][:-1] == base_manifest["layers"]
    assert len(manifest["layers"]) == base_layout.layers + 1
    # A layout's spelling is a path on this machine: naming it would make the digest depend
    # on where the base lay, so only registry bases are annotated.
    assert "annotations" not in manifest
    assert config["rootfs"]["diff_ids"][:-1] == base_layout.config["rootfs"]["diff_ids"]
    assert config["config"]["Cmd"] == ["python", "/srv/main.py"]
    assert report["digest"] == result_digest(out, "app")
    assert report["reference"] == f"oci:{out}:app@{report['digest']}"
    layers = [b for b in report["blobs"] if b["kind"] == "layer"]
    assert len(layers) == base_layout.layers + 1
    assert {b["outcome"] for b in layers[:-1]} <= {"written", "uploaded", "exists"}
    new = layers[-1]
    assert new["digest"] == manifest["layers"][-1]["digest"]
    assert new["diffID"] == config["rootfs"]["diff_ids"][-1]
    assert new["size"] == manifest["layers"][-1]["size"]
    rootfs = umoci_unpack(out, "app", tmp_path / "bundle")
    assert (rootfs / "srv/main.py").exists() and (rootfs / "bin/busybox").exists()
    # The same base written again into the same layout: nothing is rewritten.
    again = json.loads(
        ocibuild(
            "append",
            "--json",
            "--base",
            base_layout.ref,
            "--to",
            f"oci:{out}:app2",
            f"{app}/main.py:/srv/",
        ).stdout
    )
    assert {b["outcome"] for b in again["blobs"] if b["kind"] == "layer"} == {"exists"}


def test_append_zstd_layers(
    tmp_path: Path, app: Path, cache_dir: Path, oci_schema: OCISchema
) -> None:
    out = tmp_path / "out"
    proc = ocibuild(
        "append", "--json", "--compression", "zstd", "--to", f"oci:{out}:z", f"{app}:/app"
    )
    oci_schema.validate_layout_dir(out)
    manifest, _ = layout_manifest(out, "z")
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    data = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(blob(out, manifest["layers"][0]["digest"]))
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("app/main.py")
        assert member is not None
        assert member.read() == b"print('hello from the image')\n"
    assert skopeo_inspect(f"oci:{out}:z")["Digest"] == json.loads(proc.stdout)["digest"]


def test_append_tarball_media_type_comes_from_bytes(tmp_path: Path, cache_dir: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    misleading = tmp_path / "layer.tar"  # gzip bytes under a .tar name
    misleading.write_bytes(gzip.compress(buf.getvalue()))
    out = tmp_path / "out"
    main(["append", "--tarball", str(misleading), "--to", f"oci:{out}:t"])
    manifest, config = layout_manifest(out, "t")
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    main(["append", "--tarball", str(misleading), "--compression", "zstd", "--to", f"oci:{out}:z"])
    manifest_z, config_z = layout_manifest(out, "z")
    assert manifest_z["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert config_z["rootfs"]["diff_ids"] == config["rootfs"]["diff_ids"]


def test_docker_archive_round_trip(
    tmp_path: Path, app: Path, docker_archive_base: DockerArchive, cache_dir: Path
) -> None:
    out = tmp_path / "out.tar"
    ocibuild(
        "append",
        "--base",
        docker_archive_base.ref,
        "--to",
        f"docker-archive:{out}:app:1",
        f"{app}:/app",
    )
    inspected = skopeo_inspect(f"docker-archive:{out}")
    assert len(inspected["Layers"]) == 3
    skopeo_copy(f"docker-archive:{out}", f"oci:{tmp_path / 'copy'}:t")
    rootfs = umoci_unpack(tmp_path / "copy", "t", tmp_path / "bundle")
    assert (rootfs / "app/main.py").exists() and (rootfs / "bin/busybox").exists()


def test_inspect_human_and_json(tmp_path: Path, app: Path, cache_dir: Path) -> None:
    out = tmp_path / "out"
    main(["append", "--to", f"oci:{out}:t", f"{app}:/app", "--env", "K=V"])
    human = ocibuild("inspect", f"oci:{out}:t").stdout
    assert "layers (1" in human and "env:        K=V" in human
    report = json.loads(ocibuild("inspect", "--json", f"oci:{out}:t").stdout)
    assert report["digest"] == result_digest(out, "t")
    assert report["config"]["config"]["Env"] == ["K=V"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["append", "--to", "oci:{out}:t", "{tmp}/does-not-exist"], "does not exist"),
        (["append", "--to", "oci:{out}:t", "{app}:/../../etc"], "escape"),
        (["append", "--to", "Not A Ref", "{app}"], "invalid image reference"),
        (["append", "--base", "oci:{tmp}/no-layout:x", "--to", "oci:{out}:t", "{app}"], "layout"),
        (["append", "--base", "oci:{base}:nope", "--to", "oci:{out}:t", "{app}"], "nope"),
        (["append", "--to", "oci:{out}:t", "--env", "NOEQUALS", "{app}"], "KEY=VALUE"),
        (["append", "--to", "oci:{out}:t", "--platform", "linux", "{app}"], "platform"),
        (["append", "--to", "oci:{out}:t"], "nothing to append"),
        (["append", "--to", "oci:{out}:t", "--tarball", "{app}/main.py"], "tar"),
        (["append", "--to", "oci:{out}:t", "--mtime", "yesterday", "{app}"], "--mtime"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, app: Path, base_layout: BaseImage, cache_dir: Path, args: list[str], needle: str
) -> None:
    out = tmp_path / "out"
    fill = {"out": str(out), "tmp": str(tmp_path), "app": str(app), "base": str(base_layout.path)}
    proc = ocibuild(*[a.format(**fill) for a in args], check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 or lines[0].startswith("usage:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
    assert not (out / "index.json").exists()


def test_failed_write_leaves_existing_tag_alone(tmp_path: Path, app: Path, cache_dir: Path) -> None:
    out = tmp_path / "out"
    main(["append", "--to", f"oci:{out}:t", f"{app}:/app"])
    before = (out / "index.json").read_bytes()
    os.mkfifo(app / "fifo")
    proc = ocibuild("append", "--to", f"oci:{out}:t", f"{app}:/app", check=False)
    assert proc.returncode == 1 and "fifo" in proc.stderr
    assert (out / "index.json").read_bytes() == before


def test_platform_all_appends_to_every_platform(
    tmp_path: Path,
    app: Path,
    base_in_registry: BaseInRegistry,
    cache_dir: Path,
    oci_schema: OCISchema,
) -> None:
    multi = tmp_path / "multi"
    skopeo_copy(f"docker://{base_in_registry.multi}", f"oci:{multi}:m", all_images=True)
    out = tmp_path / "out"
    proc = ocibuild(
        "append",
        "--json",
        "--platform",
        "all",
        "--base",
        f"oci:{multi}:m",
        "--to",
        f"oci:{out}:m",
        f"{app}:/app",
    )
    report = json.loads(proc.stdout)
    oci_schema.validate_layout_dir(out)
    assert sorted(report["platforms"]) == ["linux/amd64", "linux/arm64"]
    index = json.loads(blob(out, result_digest(out, "m")))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = sorted(m["platform"]["architecture"] for m in index["manifests"])
    assert platforms == ["amd64", "arm64"]
    # The new layer was built once and is shared by both platforms' manifests.
    tops = [json.loads(blob(out, m["digest"]))["layers"][-1]["digest"] for m in index["manifests"]]
    assert len(set(tops)) == 1
    # One platform of the same base: a plain manifest for it.
    one = json.loads(
        ocibuild(
            "append",
            "--json",
            "--platform",
            "linux/arm64",
            "--base",
            f"oci:{multi}:m",
            "--to",
            f"oci:{out}:arm",
            f"{app}:/app",
        ).stdout
    )
    assert one["platforms"] == ["linux/arm64"]
    assert skopeo_inspect(f"oci:{out}:arm")["Architecture"] == "arm64"
    missing = ocibuild(
        "append",
        "--platform",
        "linux/s390x",
        "--base",
        f"oci:{multi}:m",
        "--to",
        f"oci:{out}:x",
        f"{app}:/app",
        check=False,
    )
    assert missing.returncode == 1 and "linux/amd64" in missing.stderr


def test_scratch_with_platform(tmp_path: Path, app: Path, cache_dir: Path) -> None:
    out = tmp_path / "out"
    main(["append", "--platform", "linux/arm64/v8", "--to", f"oci:{out}:t", f"{app}:/app"])
    inspected = skopeo_inspect(f"oci:{out}:t", config=True)
    assert (inspected["architecture"], inspected["variant"]) == ("arm64", "v8")


def test_a_second_to_is_a_usage_error(tmp_path: Path, app: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    proc = ocibuild(
        "append", "--to", f"oci:{first}:1", "-t", f"oci:{second}:1", f"{app}:/app", check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "ocibuild append: error: -t was given twice; give it once"
    )
    assert not first.exists() and not second.exists()

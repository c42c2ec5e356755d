"""Base images made without ocibuild: a busybox rootfs, packed by umoci, copied by skopeo."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._tools import require, run, skopeo_copy

__all__ = [
    "BUSYBOX_APPLETS",
    "HELLO_OUTPUT",
    "BaseImage",
    "BaseInRegistry",
    "DockerArchive",
    "make_base_in_registry",
    "make_base_layout",
    "make_busybox_rootfs",
    "make_docker_archive",
]

BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "env")
BASE_TAG = "base"
BASE_ENV = ("PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8")
BASE_ENTRYPOINT = ("/bin/sh", "-c")
BASE_CMD = ("hello",)
BASE_WORKDIR = "/root"
BASE_LABELS = {"org.opencontainers.image.title": "ocibuild-test-base", "ocibuild.test": "base"}
HELLO_OUTPUT = "hello from the ocibuild test base"
_CREATED = "2024-01-01T00:00:00Z"
_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_REF_NAME = "org.opencontainers.image.ref.name"
_PT_INTERP = 3  # ELF program header type of a dynamic loader request


@dataclass(frozen=True)
class BaseImage:
    """An OCI layout holding the base image at `tag`."""

    path: Path
    tag: str
    layers: int
    manifest_digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]

    @property
    def ref(self) -> str:
        """The skopeo/ocibuild spelling, `oci:PATH:TAG`."""
        return f"oci:{self.path}:{self.tag}"


@dataclass(frozen=True)
class BaseInRegistry:
    """The base image in a registry as OCI, as Docker schema 2, and as a two-platform index."""

    host: str
    oci: str  # "127.0.0.1:PORT/base/oci:1"
    docker: str  # "127.0.0.1:PORT/base/docker:1"
    multi: str  # "127.0.0.1:PORT/base/multi:1"
    oci_digest: str
    docker_digest: str
    multi_digest: str  # of the index
    platform_digests: dict[str, str]  # "linux/amd64" / "linux/arm64" -> manifest digest


@dataclass(frozen=True)
class DockerArchive:
    """The base image as a `docker save` tarball."""

    path: Path
    repo_tag: str  # as given to skopeo; the archive records it as docker.io/library/base:1

    @property
    def ref(self) -> str:
        """The skopeo/ocibuild spelling, `docker-archive:PATH`."""
        return f"docker-archive:{self.path}"


def make_busybox_rootfs(dest: Path) -> Path:
    """Lay out a minimal rootfs from Debian's busybox-static under `dest`."""
    busybox = Path(require("busybox")).resolve()
    if _is_dynamic(busybox):
        raise RuntimeError(
            f"{busybox} is dynamically linked; the test rootfs needs the static one: "
            "run `apt-get install -y busybox-static`"
        )
    for directory in ("bin", "etc", "root", "tmp", "usr/local/bin"):
        (dest / directory).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    (dest / "root").chmod(0o700)
    shutil.copyfile(busybox, dest / "bin" / "busybox")
    (dest / "bin" / "busybox").chmod(0o755)
    for applet in BUSYBOX_APPLETS:
        (dest / "bin" / applet).symlink_to("busybox")
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return dest


def make_base_layout(workdir: Path, rootfs: Path) -> BaseImage:
    """Build the two-layer gzip base image with umoci alone, at `workdir/layout:base`."""
    layout, bundle = workdir / "layout", workdir / "bundle"
    image = f"{layout}:{BASE_TAG}"
    run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", image])
    run(["umoci", "unpack", "--rootless", "--image", image, bundle])
    shutil.copytree(rootfs, bundle / "rootfs", symlinks=True, dirs_exist_ok=True)
    _repack(image, bundle, "busybox rootfs")
    _write_second_layer(bundle / "rootfs")
    _repack(image, bundle, "os-release and hello")
    config_flags = [f"--config.env={env}" for env in BASE_ENV]
    config_flags += [f"--config.entrypoint={arg}" for arg in BASE_ENTRYPOINT]
    config_flags += [f"--config.cmd={arg}" for arg in BASE_CMD]
    config_flags += [f"--config.label={key}={value}" for key, value in BASE_LABELS.items()]
    run(
        [
            "umoci",
            "config",
            "--image",
            image,
            *config_flags,
            f"--config.workingdir={BASE_WORKDIR}",
            "--architecture=amd64",
            "--os=linux",
            f"--created={_CREATED}",
            "--history.created_by=ocibuild tests: umoci config",
        ]
    )
    run(["umoci", "gc", "--layout", layout])
    shutil.rmtree(bundle)
    return _read_base(layout, BASE_TAG)


def make_base_in_registry(base: BaseImage, host: str, workdir: Path) -> BaseInRegistry:
    """Push the base as OCI, as Docker schema 2, and as a linux/amd64+arm64 index to `host`."""
    oci, docker, multi = (f"{host}/base/{kind}:1" for kind in ("oci", "docker", "multi"))
    oci_digest = skopeo_copy(base.ref, f"docker://{oci}")
    docker_digest = skopeo_copy(base.ref, f"docker://{docker}", format="v2s2")
    multi_layout, platforms = _make_multiarch_layout(base, workdir / "multi")
    multi_digest = skopeo_copy(f"oci:{multi_layout}:multi", f"docker://{multi}", all_images=True)
    return BaseInRegistry(
        host=host,
        oci=oci,
        docker=docker,
        multi=multi,
        oci_digest=oci_digest,
        docker_digest=docker_digest,
        multi_digest=multi_digest,
        platform_digests=platforms,
    )


def make_docker_archive(base: BaseImage, path: Path) -> DockerArchive:
    """Write the base as a docker-archive tarball at `path`."""
    archive = DockerArchive(path=path, repo_tag="base:1")
    skopeo_copy(base.ref, f"docker-archive:{path}:{archive.repo_tag}")
    return archive


def _repack(image: str, bundle: Path, created_by: str) -> None:
    run(
        [
            "umoci",
            "repack",
            "--refresh-bundle",
            "--image",
            image,
            f"--history.created_by=ocibuild tests: {created_by}",
            bundle,
        ]
    )


def _write_second_layer(rootfs: Path) -> None:
    (rootfs / "etc" / "os-release").write_text(
        'NAME="ocibuild test base"\nID=ocibuild-test\nVERSION_ID="1"\n'
    )
    hello = rootfs / "usr" / "local" / "bin" / "hello"
    hello.write_text(f'#!/bin/sh\necho "{HELLO_OUTPUT}"\n')
    hello.chmod(0o755)


def _make_multiarch_layout(base: BaseImage, dest: Path) -> tuple[Path, dict[str, str]]:
    """Copy the layout, add an arm64 twin of the base, and tag an index of both `multi`."""
    shutil.copytree(base.path, dest)
    run(
        [
            "umoci",
            "config",
            "--image",
            f"{dest}:{base.tag}",
            "--tag",
            "arm64",
            "--architecture=arm64",
            "--no-history",
        ]
    )
    index_json = json.loads((dest / "index.json").read_text())
    by_tag = {d["annotations"][_REF_NAME]: d for d in index_json["manifests"]}
    children = []
    for tag, arch in ((base.tag, "amd64"), ("arm64", "arm64")):
        descriptor = by_tag[tag]
        children.append(
            {
                "mediaType": _OCI_MANIFEST,
                "digest": descriptor["digest"],
                "size": descriptor["size"],
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": _OCI_INDEX, "manifests": children})
    index_bytes = index.encode()
    digest = _write_blob(dest, index_bytes)
    index_json["manifests"].append(
        {
            "mediaType": _OCI_INDEX,
            "digest": digest,
            "size": len(index_bytes),
            "annotations": {_REF_NAME: "multi"},
        }
    )
    (dest / "index.json").write_text(json.dumps(index_json))
    platforms = {f"linux/{c['platform']['architecture']}": c["digest"] for c in children}
    return dest, platforms


def _write_blob(layout: Path, data: bytes) -> str:
    encoded = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / encoded).write_bytes(data)
    return f"sha256:{encoded}"


def _read_base(layout: Path, tag: str) -> BaseImage:
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = [d for d in index["manifests"] if d["annotations"][_REF_NAME] == tag]
    manifest = json.loads(_read_blob(layout, descriptor["digest"]))
    config = json.loads(_read_blob(layout, manifest["config"]["digest"]))
    return BaseImage(
        path=layout,
        tag=tag,
        layers=len(manifest["layers"]),
        manifest_digest=descriptor["digest"],
        manifest=manifest,
        config=config,
    )


def _read_blob(layout: Path, digest: str) -> bytes:
    algorithm, _, encoded = digest.partition(":")
    return (layout / "blobs" / algorithm / encoded).read_bytes()


def _is_dynamic(elf: Path) -> bool:
    """Whether an ELF64 little-endian executable asks for a dynamic loader (PT_INTERP)."""
    with elf.open("rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return False  # not an ELF64 LE file: let the image tests find out
        phoff = struct.unpack_from("<Q", header, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = (struct.unpack_from("<I", table, i * phentsize)[0] for i in range(phnum))
    return _PT_INTERP in types

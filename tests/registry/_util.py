"""Small real images, and pushing them through a RegistrySink the way ocibuild's writer does."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import stat
import sys
import tarfile
import textwrap
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ocibuild.oci import Descriptor, Digest, Manifest
from ocibuild.oci import media_types as mt
from ocibuild.oci._blobs import BytesStream
from ocibuild.oci._layer import BlobStream, LayerDigests
from ocibuild.registry import RegistrySink


class StreamedBlob(BlobStream):
    """Yields ``data`` in ``piece``-sized chunks; its digests are known only at the end."""

    def __init__(self, data: bytes, media_type: str, diff_id: Digest, piece: int = 1 << 20):
        self._data = data
        self._media_type = media_type
        self._diff_id = diff_id
        self._piece = piece
        self._pos = 0
        self._hasher = hashlib.sha256()

    def __next__(self) -> bytes:
        if self._pos >= len(self._data):
            if self.digests is None:
                digest = Digest("sha256", self._hasher.hexdigest())
                self.digests = LayerDigests(self._media_type, digest, self._diff_id, self._pos)
            raise StopIteration
        chunk = self._data[self._pos : self._pos + self._piece]
        self._pos += len(chunk)
        self._hasher.update(chunk)
        return chunk


@dataclass
class TestLayer:
    """A gzip tar layer held in memory; ``known_up_front=False`` makes it a streamed one."""

    gz: bytes
    diff_id: Digest
    known_up_front: bool = True
    mount_from: tuple[str, str] | None = None
    media_type: str = mt.OCI_LAYER_GZIP
    description: str = "test layer"

    __test__ = False  # not a pytest test class

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, Digest.of(self.gz), len(self.gz))

    def known(self) -> LayerDigests | None:
        if not self.known_up_front:
            return None
        return LayerDigests(self.media_type, Digest.of(self.gz), self.diff_id, len(self.gz))

    def compressed(self) -> BlobStream:
        return StreamedBlob(self.gz, self.media_type, self.diff_id)

    def uncompressed(self) -> Iterator[bytes]:
        yield gzip.decompress(self.gz)


def make_layer(files: dict[str, bytes], **kwargs: object) -> TestLayer:
    """A reproducible gzip tar layer of ``files``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = gzip.compress(tar_bytes, compresslevel=1, mtime=0)
    return TestLayer(gz, Digest.of(tar_bytes), **kwargs)  # type: ignore[arg-type]


def random_layer(size: int, seed: int, **kwargs: object) -> TestLayer:
    """A layer holding ``size`` incompressible bytes (so the blob is about that big)."""
    data = random.Random(seed).randbytes(size)
    return make_layer({f"data-{seed}.bin": data}, **kwargs)


@dataclass
class Pushed:
    """What :func:`push_image` wrote."""

    manifest: Descriptor
    manifest_bytes: bytes
    config: Descriptor
    outcomes: list[str] = field(default_factory=list)


def push_image(
    sink: RegistrySink,
    layers: Sequence[TestLayer],
    *,
    tag: str | None,
    docker: bool = False,
    note: str = "",
) -> Pushed:
    """Drive ``sink`` like the writer: layers concurrently, config, manifest (tag last), commit."""
    try:
        with ThreadPoolExecutor(max_workers=sink.concurrency) as pool:
            outcomes = list(pool.map(lambda layer: _put_layer(sink, layer), layers))
        layer_type = mt.DOCKER_LAYER_GZIP if docker else mt.OCI_LAYER_GZIP
        config_data = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": ["PATH=/bin"], "Labels": {"note": note}},
                "rootfs": {"type": "layers", "diff_ids": [str(x.diff_id) for x in layers]},
            },
            separators=(",", ":"),
        ).encode()
        config = BytesStream(config_data, mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG)
        config_desc = config.descriptor
        if not sink.has_blob(config_desc):
            sink.put_blob(config, config_desc)
        manifest = Manifest(
            config_desc,
            tuple(Descriptor(layer_type, x.descriptor.digest, x.descriptor.size) for x in layers),
            media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
        )
        data = manifest.to_json()
        desc = sink.put_manifest(data, manifest.media_type, tag=tag)
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return Pushed(desc, data, config_desc, outcomes)


def _put_layer(sink: RegistrySink, layer: TestLayer) -> str:
    known = layer.known()
    desc = layer.descriptor if known is not None else None
    if desc is not None:
        if sink.has_blob(desc):
            return "exists"
        if sink.try_mount(layer, desc):
            return "mounted"
    stream = layer.compressed()
    outcome = sink.put_blob(stream, desc)
    assert stream.result.digest == layer.descriptor.digest
    return outcome


def write_credential_helper(directory: Path, name: str = "test") -> Path:
    """A real ``docker-credential-NAME`` program keeping its secrets in ``store.json`` beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    store = directory / "store.json"
    log = directory / "calls.log"
    program = directory / f"docker-credential-{name}"
    program.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""\
            import json, sys
            store_path, log_path = {str(store)!r}, {str(log)!r}
            verb = sys.argv[1]
            data = sys.stdin.read()
            with open(log_path, "a") as log:
                log.write(verb + " " + (data.strip() if verb != "store" else "") + "\\n")
            try:
                with open(store_path) as f:
                    store = json.load(f)
            except FileNotFoundError:
                store = {{}}
            if verb == "get":
                url = data.strip()
                if url not in store:
                    print("credentials not found in native keychain")
                    sys.exit(1)
                entry = store[url]
                print(json.dumps({{"ServerURL": url, "Username": entry[0], "Secret": entry[1]}}))
            elif verb == "store":
                entry = json.loads(data)
                store[entry["ServerURL"]] = [entry["Username"], entry["Secret"]]
                with open(store_path, "w") as f:
                    json.dump(store, f)
            elif verb == "erase":
                url = data.strip()
                if url not in store:
                    print("credentials not found in native keychain")
                    sys.exit(1)
                del store[url]
                with open(store_path, "w") as f:
                    json.dump(store, f)
            elif verb == "list":
                print(json.dumps({{url: entry[0] for url, entry in store.items()}}))
            else:
                sys.exit(2)
            """
        )
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return program


def path_with(directory: Path) -> str:
    """PATH with ``directory`` first."""
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"

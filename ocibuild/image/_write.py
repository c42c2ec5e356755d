"""Writing images to any transport: layers first (concurrently), then config, then manifest.

Each layer goes through named steps: already there? -> mount -> stream it. Only when every
blob is in place is the manifest written, and only :meth:`ImageSink.commit` makes a tag point
at it, so a failed write never leaves a tag on a broken image.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import UploadSessionLostError
from ..layer._pipeline import prefetched
from ..oci import Descriptor, Digest, ImageConfig, Index, Manifest, Platform, describe
from ..oci import media_types as mt
from ..oci._blobs import BytesStream, tar_blob
from ..oci._layer import BlobStream, Layer, LayerDigests, SizedSource
from ..transports import Location, mount_origin, open_sink
from ..transports._base import (
    BlobOutcome,
    BlobResult,
    ImageSink,
    ImageSource,
    NullProgress,
    Progress,
    phase,
)
from ..transports._tagging import with_extra_tags
from ._image import Image, SourceLayer, checked_diff_ids

if TYPE_CHECKING:
    from ..transports.registry import RegistryOptions

__all__ = ["BlobWriter", "TagRule", "WriteResult", "tag_of", "write"]

# Names the tag after the manifest digest, which is only known once every layer is written.
TagRule = Callable[[Digest], str]
# What writing one image gives: its manifest's descriptor and every blob's fate, in order.
_Written = tuple[Descriptor, list[BlobResult]]

log = logging.getLogger("ocibuild.write")

T = TypeVar("T")


@dataclass(frozen=True)
class WriteResult:
    """What a write produced: the pinned reference, the manifest digest, and every blob's fate."""

    reference: str
    digest: Digest
    media_type: str
    size: int
    blobs: tuple[BlobResult, ...]
    platforms: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``--json`` prints)."""
        return {
            "reference": self.reference,
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "size": self.size,
            "platforms": list(self.platforms),
            "blobs": [
                {
                    "kind": "config" if b.label.startswith("config") else "layer",
                    "description": b.label,
                    "digest": str(b.descriptor.digest),
                    "diffID": b.diff_id,
                    "size": b.descriptor.size,
                    "mediaType": b.descriptor.media_type,
                    "outcome": b.outcome,
                    "bytesSent": b.bytes_sent,
                }
                for b in self.blobs
            ],
        }


def write(
    images: Image | Sequence[Image],
    dest: str | Location | ImageSink,
    *,
    registry_options: RegistryOptions | None = None,
    progress: Progress | None = None,
    as_index: bool | None = None,
    tag: str | TagRule | None = None,
    extra_tags: Sequence[str] = (),
    base_annotations: bool = True,
) -> WriteResult:
    """Write one image, or several as an index (one per platform), to ``dest``.

    ``dest`` is a transport spelling (``oci:DIR:TAG``, ``REGISTRY/REPO:TAG``,
    ``docker-archive:FILE:REF``) or an open sink. Nothing is tagged unless all of it worked.
    ``tag`` replaces the tag ``dest`` names (a registry or a layout): a string, or a function of
    the manifest digest, called just before the manifest is put, for a tag that changes
    exactly when the image does without a pass over the layers to work it out first.
    ``extra_tags`` name the same image too: each is one more manifest put, nothing else.

    An image made from one loaded from a registry names it in the OCI manifest's
    ``org.opencontainers.image.base.name`` and ``.base.digest`` annotations, unless
    ``base_annotations`` is false. A loaded image written unchanged keeps its manifest bytes.
    """
    if isinstance(images, Image):
        images = (images,)
    if as_index is None:
        as_index = len(images) > 1
    location: Location | None
    if isinstance(dest, (str, Location)):
        location = dest if isinstance(dest, Location) else Location.parse(dest)
        sink = open_sink(location, registry_options)
    else:
        sink, location = dest, None
    top_tag = tag if tag is not None else tag_of(location)
    sink, top_tag = with_extra_tags(sink, top_tag, extra_tags)
    writer = BlobWriter(sink, progress, base_annotations=base_annotations)

    def body() -> Descriptor:
        if not as_index:
            return writer.image(images[0], tag=top_tag)
        children = writer.images(images)
        index = Index(tuple(children), media_type=_index_type(children))
        data = index.to_json()
        with phase(writer.progress, "index") as step:
            step.detail = f"{len(children)} platforms"
            return sink.put_manifest(data, index.media_type, tag=_named(top_tag, data))

    name = str(location) if location is not None else sink.name
    result = writer.transact(body, name, [str(image.platform) for image in images])
    if tag is None or location is None:
        return result
    final = tag(result.digest) if callable(tag) else tag
    return replace(result, reference=f"{_with_tag(location, final)}@{result.digest}")


class BlobWriter:
    """Writes the blobs of one or more images through one sink, each layer object once."""

    def __init__(
        self, sink: ImageSink, progress: Progress | None, *, base_annotations: bool = True
    ) -> None:
        self.sink = sink
        self.base_annotations = base_annotations
        self.progress: Progress = progress or NullProgress()
        self.pool = ThreadPoolExecutor(max_workers=max(1, sink.concurrency))
        self.futures: dict[int, Future[BlobResult]] = {}
        self.results: list[BlobResult] = []
        self.lock = threading.Lock()
        self.cancelled = threading.Event()

    def image(self, image: Image, *, tag: str | TagRule | None) -> Descriptor:
        """Write one image's blobs (layers concurrently), then its manifest."""
        desc, results = self._image(image, tag=tag)
        for result in results:
            self._record(result)
        return desc

    def images(self, images: Sequence[Image]) -> list[Descriptor]:
        """Write several images at once (each manifest untagged), their blobs in one pool."""
        return self._at_once([functools.partial(self._image, image, tag=None) for image in images])

    def raw_images(
        self, source: ImageSource, children: Sequence[tuple[Manifest, bytes]]
    ) -> list[Descriptor]:
        """Copy several manifests' blobs and bytes at once (each manifest untagged)."""
        steps = [functools.partial(self._raw_image, source, m, d, tag=None) for m, d in children]
        return self._at_once(steps)

    def _at_once(self, steps: Sequence[Callable[[], _Written]]) -> list[Descriptor]:
        """Run image steps concurrently, their blobs in the one shared pool.

        Each step gets a thread of its own that only waits (for its blobs, queued in the
        shared pool) and then PUTs its small manifest. Those threads hold no slot of the
        bounded pool, so an image waiting for its layers can never starve them: with
        ``concurrency`` 1 the blobs simply go one by one.
        """
        if len(steps) <= 1:
            done = [step() for step in steps]
        else:
            with ThreadPoolExecutor(len(steps), thread_name_prefix="ocibuild-image") as threads:
                futures = [threads.submit(step) for step in steps]
                wait(futures, return_when=FIRST_EXCEPTION)
                errors = [f.exception() for f in futures if f.done()]
                first = next((error for error in errors if error is not None), None)
                if first is not None:
                    self.cancel()  # the other images stop at their next chunk
                    wait(futures)
                    raise first
            done = [f.result() for f in futures]
        for _, results in done:  # reported in image order, whatever finished first
            for result in results:
                self._record(result)
        return [desc for desc, _ in done]

    def _image(self, image: Image, *, tag: str | TagRule | None) -> _Written:
        origin = image.origin
        if origin is not None and image.is_unchanged:
            return self._verbatim(
                image.layers,
                origin.manifest,
                origin.manifest_data,
                origin.config_data,
                tag,
                image.platform,
            )
        docker = _docker_family(image)
        futures = [
            self._layer_future(layer, _family_media_type(layer.media_type, docker))
            for layer in image.layers
        ]
        layer_results = [f.result() for f in futures]
        # Plain tars (of any compression before) read back as Docker schema 2 (ArchiveSource).
        docker = docker or self.sink.stores_uncompressed

        appended = layer_results[image.base_layer_count :]
        diff_ids = [Digest.parse(r.diff_id or "") for r in appended]
        config = image.config.with_layers(diff_ids, image.pending_history)
        config_type = mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG
        config_data = config.to_json()
        config_desc = BytesStream(config_data, config_type).descriptor
        config_result = self._put_config(config_data, config_desc, str(image.platform))

        manifest = Manifest(
            config=config_desc,
            layers=tuple(r.descriptor for r in layer_results),
            media_type=mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
            annotations={} if docker else {**self._base_annotations(image), **image.annotations},
        )
        data = manifest.to_json()
        named = _named(tag, data)
        desc = self._put_manifest(data, manifest.media_type, named, image.platform)
        pinned = Descriptor(manifest.media_type, desc.digest, desc.size, platform=image.platform)
        return pinned, [*layer_results, config_result]

    def transact(
        self, body: Callable[[], Descriptor], name: str, platforms: list[str]
    ) -> WriteResult:
        """Run ``body`` (which writes blobs and manifests), then commit; on any failure abort,
        so nothing half-written becomes visible. ``platforms`` may be filled in by ``body``."""
        try:
            top = body()
            self.sink.commit()
        except BaseException:
            self.cancel()
            self.sink.abort()
            raise
        finally:
            self.shutdown()
        return WriteResult(
            reference=f"{pinnable(name)}@{top.digest}",
            digest=top.digest,
            media_type=top.media_type,
            size=top.size,
            blobs=tuple(self.results),
            platforms=tuple(platforms),
        )

    def raw_image(
        self, source: ImageSource, manifest: Manifest, data: bytes, *, tag: str | None
    ) -> Descriptor:
        """Copy a manifest's blobs and then its exact bytes, so the digest is preserved."""
        desc, results = self._raw_image(source, manifest, data, tag=tag)
        for result in results:
            self._record(result)
        return desc

    def _raw_image(
        self, source: ImageSource, manifest: Manifest, data: bytes, *, tag: str | None
    ) -> _Written:
        config_data = source.get_blob(manifest.config)
        config = ImageConfig.from_json(config_data)
        mount_from = mount_origin(source)
        layers = [
            SourceLayer(source, desc, diff_id, mount_from=mount_from)
            for desc, diff_id in zip(
                manifest.layers, checked_diff_ids(config, manifest, source), strict=True
            )
        ]
        return self._verbatim(layers, manifest, data, config_data, tag, config.platform)

    def _verbatim(
        self,
        layers: Sequence[Layer],
        manifest: Manifest,
        data: bytes,
        config_data: bytes,
        tag: str | TagRule | None,
        platform: Platform,
    ) -> _Written:
        """Write ``layers`` as they are, then ``config_data`` and the manifest ``data``: the
        same bytes, unless the sink stores plain tars (the manifest then describes those)."""
        futures = [self._layer_future(layer, layer.media_type) for layer in layers]
        results = [future.result() for future in futures]
        if self.sink.stores_uncompressed:  # the layers went in as tars: describe them so
            described = tuple(result.descriptor for result in results)
            config_desc = describe(config_data, mt.DOCKER_CONFIG)
            manifest = Manifest(config_desc, described, mt.DOCKER_MANIFEST)
            data = manifest.to_json()
        results.append(self._put_config(config_data, manifest.config, str(platform)))
        desc = self._put_manifest(data, manifest.media_type, _named(tag, data), platform)
        return Descriptor(manifest.media_type, desc.digest, desc.size, platform=platform), results

    def _put_manifest(
        self, data: bytes, media_type: str, tag: str | None, platform: Platform
    ) -> Descriptor:
        with phase(self.progress, f"manifest {platform}") as step:
            desc = self.sink.put_manifest(data, media_type, tag=tag, platform=platform)
            step.detail = str(desc.digest)
        return desc

    def _base_annotations(self, image: Image) -> dict[str, str]:
        """The annotations naming the image ``image`` was made from, if wanted and named."""
        if not self.base_annotations or image.origin is None:
            return {}
        return image.origin.annotations

    def _put_config(self, data: bytes, desc: Descriptor, platform: str) -> BlobResult:
        """The config is a blob like any other: it takes its turn in the shared pool."""

        def step() -> BlobResult:
            outcome: BlobOutcome = "exists"
            if not self.sink.has_blob(desc):
                outcome = self.sink.put_blob(BytesStream(data, desc.media_type), desc)
            sent = desc.size if outcome in ("uploaded", "written") else 0
            return BlobResult(desc, outcome, None, f"config of {platform}", sent)

        return self.pool.submit(_once_more_if_lost, step, f"config of {platform}").result()

    def _layer_future(self, layer: Layer, media_type: str) -> Future[BlobResult]:
        with self.lock:
            key = id(layer)
            if key not in self.futures:
                if self.sink.stores_uncompressed:
                    step = lambda: self._write_tar(layer)  # noqa: E731
                else:
                    step = lambda: self._write_layer(layer, media_type)  # noqa: E731
                self.futures[key] = self.pool.submit(_once_more_if_lost, step, layer.description)
            return self.futures[key]

    def _write_tar(self, layer: Layer) -> BlobResult:
        """Stream the layer's tar into a sink that stores plain tars (docker-archive).

        Nothing is compressed only to be undone, and the diff_id is hashed once as the tar
        passes: the blob is the tar, so its digest is the diff_id.
        """
        if self.cancelled.is_set():
            raise RuntimeError("write cancelled")
        label = layer.description
        outcome, stream = self._send(layer, tar_blob(layer), None)
        tar = stream.result
        desc = Descriptor(mt.DOCKER_LAYER, tar.digest, tar.size)
        sent = stream.count if outcome == "written" else 0
        return BlobResult(desc, outcome, str(tar.diff_id), label, sent)

    def _send(
        self, layer: Layer, blob: BlobStream, desc: Descriptor | None
    ) -> tuple[BlobOutcome, _Counting]:
        """Stream ``blob`` (of ``layer``) into the sink, showing its progress."""
        key = f"{id(layer):x}"
        # A layer being built counts the tar it reads, against the size its stat walk expects.
        tar_total = layer.expected_tar_size() if isinstance(layer, SizedSource) else None
        total = tar_total if tar_total is not None else desc.size if desc else None
        self.progress.blob_started(key, layer.description, total)
        # Read ahead in a thread, so building the layer overlaps with writing it.
        stream = _Counting(prefetched(blob), self.progress, key, self.cancelled, tar_total)
        try:
            outcome = self.sink.put_blob(stream, desc)
        except BaseException:
            self.progress.blob_finished(key, "failed")
            raise
        finally:
            stream.close()
        self.progress.blob_finished(key, outcome)
        return outcome, stream

    def _write_layer(self, layer: Layer, media_type: str) -> BlobResult:
        """The per-blob step: already there? -> mount -> stream it (upload, then commit)."""
        if self.cancelled.is_set():
            raise RuntimeError("write cancelled")
        known = layer.known()
        label = layer.description
        desc = _descriptor(known, media_type) if known else None
        if desc is not None and known is not None:
            if self.sink.has_blob(desc):
                return BlobResult(desc, "exists", str(known.diff_id), label)
            if self.sink.try_mount(layer, desc):
                return BlobResult(desc, "mounted", str(known.diff_id), label)
        outcome, stream = self._send(layer, layer.compressed(), desc)
        # A sink may find the blob arrived meanwhile (the same base layer of another
        # platform) and leave the stream unread: the digests known up front then stand.
        digests = known if stream.digests is None and known is not None else stream.result
        final = _descriptor(digests, media_type)
        sent = stream.count if outcome in ("uploaded", "written") else 0
        return BlobResult(final, outcome, str(digests.diff_id), label, sent)

    def _record(self, result: BlobResult) -> None:
        """Keep ``result`` for the report, once per blob, in manifest order."""
        with self.lock:
            if all(r is not result for r in self.results):
                self.results.append(result)

    def cancel(self) -> None:
        self.cancelled.set()
        for future in self.futures.values():
            future.cancel()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _once_more_if_lost(step: Callable[[], T], label: str) -> T:
    """Run a per-blob step; once more, from the top, if the sink lost the upload.

    Docker Distribution 2.8 cancels an upload session whose PATCH broke mid-body, so the
    bytes it took cannot be resumed: the blob starts over, with a fresh stream from its layer
    (one being built is built again). The new try checks first whether the blob arrived.
    """
    try:
        return step()
    except UploadSessionLostError as err:
        log.info("%s: %s; starting the blob over", label, err)
        return step()


class _Counting(BlobStream):
    """Forwards a stream's chunks, counting bytes, reporting progress, stopping on cancel."""

    def __init__(
        self,
        inner: BlobStream,
        progress: Progress,
        key: str,
        cancelled: threading.Event,
        tar_total: int | None = None,
    ) -> None:
        self.inner = inner
        self.progress = progress
        self.key = key
        self.cancelled = cancelled
        self.count = 0
        # Progress is told in the units of the total it was given: tar bytes read, when the
        # layer announced its tar size and its stream counts them; else blob bytes.
        self.by_tar = tar_total is not None
        self.reported = 0

    def __next__(self) -> bytes:
        if self.cancelled.is_set():
            raise RuntimeError("write cancelled")
        try:
            chunk = next(self.inner)
        except StopIteration:
            self.digests = self.inner.digests
            self._report()
            raise
        self.count += len(chunk)
        self._report()
        return chunk

    def _report(self) -> None:
        consumed = self.inner.consumed if self.by_tar else None
        done = self.count if consumed is None else consumed
        if done > self.reported:
            self.progress.blob_advanced(self.key, done - self.reported)
            self.reported = done

    def close(self) -> None:
        self.inner.close()


def _descriptor(digests: LayerDigests, media_type: str) -> Descriptor:
    return Descriptor(media_type, digests.digest, digests.size)


def _docker_family(image: Image) -> bool:
    """Docker schema 2 output only when the base was Docker and no layer needs OCI (zstd)."""
    if not mt.is_docker(image.media_type):
        return False
    return all(mt.compression_of(layer.media_type) != "zstd" for layer in image.layers)


def _family_media_type(media_type: str, docker: bool) -> str:
    if media_type in (mt.DOCKER_FOREIGN_LAYER,) or "nondistributable" in media_type:
        return media_type
    return mt.layer_media_type(mt.compression_of(media_type), docker=docker)


def _index_type(children: Sequence[Descriptor]) -> str:
    if children and all(mt.is_docker(c.media_type) for c in children):
        return mt.DOCKER_MANIFEST_LIST
    return mt.OCI_INDEX


def _named(tag: str | TagRule | None, manifest: bytes) -> str | None:
    return tag(Digest.of(manifest)) if callable(tag) else tag


def _with_tag(location: Location, tag: str) -> str:
    """The spelling of ``location`` at ``tag``."""
    if location.kind == "registry" and location.reference is not None:
        return str(location.reference.with_tag(tag))
    return f"{location.kind}:{location.path}:{tag}"


def tag_of(location: Location | None) -> str | None:
    if location is None:
        return None
    if location.kind == "registry" and location.reference is not None:
        ref = location.reference
        return ref.tag if ref.digest is None else (ref.tag or None)
    return location.tag


def pinnable(name: str) -> str:
    """A name to put ``@digest`` after: drop a trailing ``@digest`` already in it."""
    return name.split("@", 1)[0]

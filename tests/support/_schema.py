"""Validate manifests, indexes, configs and whole OCI layouts against the OCI JSON schemas."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = ["LayoutSummary", "OCISchema", "SchemaViolation"]

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "data" / "oci-schema"
# The schemas refer to each other by file name, resolved against either of these bases.
_BASES = ("https://opencontainers.org/schema/image/", "https://opencontainers.org/schema/")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
_INDEXES = frozenset({OCI_INDEX, DOCKER_LIST})
_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


class SchemaViolation(AssertionError):
    """A document or layout that breaks the OCI image spec."""


@dataclass(frozen=True)
class LayoutSummary:
    """What `validate_layout_dir` checked."""

    manifests: int  # manifests and indexes reachable from index.json
    blobs: int  # blob files whose content hashes to their name


class OCISchema:
    """The OCI image-spec JSON schemas (draft-04), plus the rules they cannot express."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        resources = []
        for path in sorted(schema_dir.glob("*.json")):
            resource = Resource.from_contents(json.loads(path.read_text()), DRAFT4)
            resources += [(base + path.name, resource) for base in _BASES]
        registry: Registry[Any] = Registry().with_resources(resources)

        def validator(name: str) -> jsonschema.Draft4Validator:
            schema = json.loads((schema_dir / name).read_text())
            return jsonschema.Draft4Validator(
                schema, registry=registry, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
            )

        self._manifest = validator("image-manifest-schema.json")
        self._index = validator("image-index-schema.json")
        self._config = validator("config-schema.json")
        self._layout = validator("image-layout-schema.json")

    def validate_manifest(self, obj: Any) -> None:
        """An image manifest (OCI, or Docker schema 2 which has the same shape)."""
        doc = _check(self._manifest, obj, "image manifest")
        media_type = doc.get("mediaType", OCI_MANIFEST)
        if media_type not in _MANIFESTS:
            raise SchemaViolation(f"image manifest has mediaType {media_type!r}")
        _check_family(doc, docker=media_type == DOCKER_MANIFEST)

    def validate_index(self, obj: Any) -> None:
        """An image index (OCI, or a Docker manifest list)."""
        doc = _check(self._index, obj, "image index")
        media_type = doc.get("mediaType", OCI_INDEX)
        if media_type not in _INDEXES:
            raise SchemaViolation(f"image index has mediaType {media_type!r}")

    def validate_config(self, obj: Any) -> None:
        """An image configuration; history must match the layers it describes."""
        doc = _check(self._config, obj, "image config")
        history = doc.get("history")
        if history is not None:
            layers = sum(1 for entry in history if not entry.get("empty_layer", False))
            diff_ids = len(doc["rootfs"]["diff_ids"])
            if layers != diff_ids:
                raise SchemaViolation(
                    f"image config has {layers} non-empty history entries for {diff_ids} diff_ids"
                )

    def validate_layout(self, obj: Any) -> None:
        """The `oci-layout` file."""
        _check(self._layout, obj, "oci-layout")

    def validate_layout_dir(self, path: str | Path) -> LayoutSummary:
        """A whole OCI layout: oci-layout, index.json, everything they reach, every blob's hash."""
        root = Path(path)
        for required in ("oci-layout", "index.json", "blobs"):
            if not (root / required).exists():
                raise SchemaViolation(f"{root} is not an OCI layout: {required} is missing")
        self.validate_layout((root / "oci-layout").read_bytes())
        index = _as_json((root / "index.json").read_bytes(), "index.json")
        self.validate_index(index)
        blobs = _verify_blobs(root / "blobs")
        manifests = self._walk(root, index["manifests"], blobs)
        return LayoutSummary(manifests=manifests, blobs=len(blobs))

    def _walk(self, root: Path, descriptors: list[dict[str, Any]], blobs: dict[str, int]) -> int:
        count = 0
        for descriptor in descriptors:
            content = _blob(root, descriptor, blobs)
            media_type = descriptor["mediaType"]
            if media_type in _INDEXES:
                child = _as_json(content, descriptor["digest"])
                self.validate_index(child)
                count += 1 + self._walk(root, child["manifests"], blobs)
            elif media_type in _MANIFESTS:
                manifest = _as_json(content, descriptor["digest"])
                self.validate_manifest(manifest)
                config = _blob(root, manifest["config"], blobs)
                if manifest["config"]["mediaType"] in _CONFIGS:
                    self.validate_config(_as_json(config, manifest["config"]["digest"]))
                for layer in manifest["layers"]:
                    _blob(root, layer, blobs)
                count += 1
        return count


def _check(validator: jsonschema.Draft4Validator, obj: Any, what: str) -> dict[str, Any]:
    doc = _as_json(obj, what) if isinstance(obj, (bytes, str)) else obj
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise SchemaViolation(f"{what} does not match the OCI schema at {where}: {error.message}")
    if not isinstance(doc, Mapping):
        raise SchemaViolation(f"{what} is not a JSON object")
    return dict(doc)


def _check_family(manifest: dict[str, Any], *, docker: bool) -> None:
    # Docker and OCI media types must not be mixed within one manifest (image-spec, media types).
    for descriptor in [manifest["config"], *manifest["layers"]]:
        media_type = descriptor["mediaType"]
        if media_type.startswith("application/vnd.docker.") != docker:
            kind = "Docker" if docker else "OCI"
            raise SchemaViolation(f"{kind} manifest refers to a {media_type} descriptor")


def _as_json(data: bytes | str, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as err:
        raise SchemaViolation(f"{what} is not valid JSON: {err}") from err


def _verify_blobs(blobs_dir: Path) -> dict[str, int]:
    """Hash every blob; return {digest: size}."""
    found = {}
    for path in sorted(p for p in blobs_dir.glob("*/*") if p.is_file()):
        algorithm = path.parent.name
        if algorithm not in _HASHES:
            raise SchemaViolation(f"blob {path} uses an unknown digest algorithm")
        hasher = _HASHES[algorithm]()
        with path.open("rb") as blob:
            while chunk := blob.read(1 << 20):
                hasher.update(chunk)
        if hasher.hexdigest() != path.name:
            raise SchemaViolation(f"blob {path} hashes to {algorithm}:{hasher.hexdigest()}")
        found[f"{algorithm}:{path.name}"] = path.stat().st_size
    return found


def _blob(root: Path, descriptor: dict[str, Any], blobs: dict[str, int]) -> bytes:
    digest = str(descriptor["digest"])
    if digest not in blobs:
        raise SchemaViolation(f"{root} has no blob for {digest} ({descriptor['mediaType']})")
    if blobs[digest] != descriptor["size"]:
        raise SchemaViolation(
            f"blob {digest} has {blobs[digest]} bytes, its descriptor says {descriptor['size']}"
        )
    algorithm, _, encoded = digest.partition(":")
    if descriptor["mediaType"] in _MANIFESTS | _INDEXES | _CONFIGS:
        return (root / "blobs" / algorithm / encoded).read_bytes()
    return b""

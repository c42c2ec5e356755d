"""`ocibuild digest|manifest|config|ls|tag|delete` against Docker Distribution, cross-checked
with skopeo and the registry's own access log."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ocibuild.registry import RegistryClient
from tests.support import BaseInRegistry, Registry, skopeo_inspect, start_registry

from ._util import ocibuild, push_small, repo, sha256


def test_digest_manifest_and_config_are_the_registry_bytes(
    base_in_registry: BaseInRegistry,
) -> None:
    ref = base_in_registry.oci
    digest = ocibuild("digest", ref).stdout.strip()
    manifest = ocibuild("manifest", ref).stdout.encode()
    config = ocibuild("config", ref).stdout.encode()
    assert digest == base_in_registry.oci_digest
    assert manifest == skopeo_inspect(f"docker://{ref}", raw=True)  # byte for byte
    assert sha256(manifest) == digest
    assert config == skopeo_inspect(f"docker://{ref}", raw=True, config=True)
    assert sha256(config) == json.loads(manifest)["config"]["digest"]


def test_digest_and_manifest_of_an_index_and_of_one_platform(
    base_in_registry: BaseInRegistry,
) -> None:
    ref = base_in_registry.multi
    assert ocibuild("digest", ref).stdout.strip() == base_in_registry.multi_digest
    arm = ocibuild("digest", "--platform", "linux/arm64", ref).stdout.strip()
    assert arm == base_in_registry.platform_digests["linux/arm64"]
    child = ocibuild("manifest", "--platform", "linux/arm64", ref).stdout.encode()
    assert sha256(child) == arm
    config = json.loads(ocibuild("config", "--platform", "linux/arm64", ref).stdout)
    assert config["architecture"] == "arm64"
    missing = ocibuild("digest", "--platform", "linux/s390x", ref, check=False)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "linux/s390x" in missing.stderr


def test_ls_lists_the_tags_sorted(registry: Registry, tmp_path: Path) -> None:
    name = repo(registry, "ls")
    tags = ["t3", "t0", "t10", "t1", "latest"]
    push_small(tmp_path, f"{name}:{tags[0]}")
    for tag in tags[1:]:
        ocibuild("tag", f"{name}:{tags[0]}", tag)
    assert ocibuild("ls", name).stdout.split() == sorted(tags)
    assert json.loads(ocibuild("ls", "--json", name).stdout) == sorted(tags)


class _PagingRegistry(ThreadingHTTPServer):
    """tags/list as the distribution spec pages it: ``n`` per page, after ``last``, with a
    ``Link`` to the next page unless ``links`` is off. (Docker Distribution 2.8 ignores ``n``
    and sends every tag at once, so it cannot show paging.)"""

    def __init__(self, tags: list[str], *, links: bool) -> None:
        super().__init__(("127.0.0.1", 0), _PagingHandler)
        self.tags, self.links = sorted(tags), links
        self.paths: list[str] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _PagingHandler(BaseHTTPRequestHandler):
    server: _PagingRegistry

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        url = urlsplit(self.path)
        if url.path == "/v2/":
            return self._send(b"{}")
        query = parse_qs(url.query)
        n = int(query["n"][0])
        last = query.get("last", [""])[0]
        rest = [t for t in self.server.tags if t > last]
        page, more = rest[:n], len(rest) > n
        link = f'</v2/app/tags/list?n={n}&last={page[-1]}>; rel="next"' if more else None
        body = json.dumps({"name": "app", "tags": page}).encode()
        self._send(body, link if self.server.links else None)

    def _send(self, body: bytes, link: str | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if link:
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("links", [True, False], ids=["link-header", "last-only"])
def test_tag_listing_follows_every_page(links: bool) -> None:
    tags = [f"v{i:02d}" for i in range(7)]
    server = _PagingRegistry(tags, links=links)
    try:
        with RegistryClient(server.host) as client:
            assert client.tags("app", page_size=3) == tags
    finally:
        server.shutdown()
        server.server_close()
    pages = [p for p in server.paths if "/tags/list" in p]
    assert len(pages) == 3  # the short third page ends it, with or without a Link
    assert "last=v02" in pages[1] and "last=v05" in pages[2]


def test_ls_refuses_a_tag_and_names_a_missing_repository(registry: Registry) -> None:
    name = repo(registry, "ls-missing")
    tagged = ocibuild("ls", f"{name}:1", check=False)
    assert tagged.returncode == 2 and "no tag" in tagged.stderr
    missing = ocibuild("ls", name, check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert missing.stderr.count("\n") == 1


def test_tag_is_one_manifest_put_and_sends_no_blob(registry: Registry, tmp_path: Path) -> None:
    name = repo(registry, "tag")
    digest = push_small(tmp_path, f"{name}:1")
    registry.mark()
    out = ocibuild("tag", f"{name}:1", "stable").stdout.strip()
    assert out == f"{name}:stable@{digest}"
    requests = registry.requests(at_least=2)
    assert not [r for r in requests if "/blobs/" in r.path]
    puts = [r for r in requests if r.method == "PUT"]
    assert [(r.path, r.status) for r in puts] == [
        (f"/v2/{name.partition('/')[2]}/manifests/stable", 201)
    ]
    assert skopeo_inspect(f"docker://{name}:stable")["Digest"] == digest


def test_tag_refuses_another_repository(registry: Registry, tmp_path: Path) -> None:
    name = repo(registry, "tag-elsewhere")
    proc = ocibuild("tag", f"{name}:1", f"{registry.host}/other:1", check=False)
    assert proc.returncode == 2 and "ocibuild copy" in proc.stderr


def test_delete_resolves_the_tag_and_deletes_by_digest(registry: Registry, tmp_path: Path) -> None:
    name = repo(registry, "delete")
    digest = push_small(tmp_path, f"{name}:1")
    ocibuild("tag", f"{name}:1", "also")
    registry.mark()
    out = ocibuild("delete", f"{name}:1").stdout.strip()
    assert out == f"deleted {name}@{digest}"
    deletes = [r for r in registry.requests(at_least=2) if r.method == "DELETE"]
    assert [(r.path, r.status) for r in deletes] == [
        (f"/v2/{name.partition('/')[2]}/manifests/{digest}", 202)
    ]
    for tag in ("1", "also"):  # a manifest goes with every tag on it
        gone = ocibuild("digest", f"{name}:{tag}", check=False)
        assert gone.returncode == 1 and "not found" in gone.stderr
    other = repo(registry, "delete-json")
    second = push_small(tmp_path, f"{other}:1", text="other")
    report = json.loads(ocibuild("delete", "--json", f"{other}:1").stdout)
    assert report == {"deleted": f"{other}@{second}", "digest": second}
    again = ocibuild("delete", f"{name}@{digest}", check=False)
    assert again.returncode == 1 and "not found" in again.stderr


def test_delete_on_a_registry_that_refuses_says_how_to_allow_it(tmp_path: Path) -> None:
    with start_registry(tmp_path / "no-delete", delete_enabled=False) as locked:
        name = repo(locked, "keep")
        push_small(tmp_path, f"{name}:1")
        proc = ocibuild("delete", f"{name}:1", check=False)
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in proc.stderr
        assert "405" in proc.stderr
        assert ocibuild("digest", f"{name}:1").returncode == 0  # still there


@pytest.mark.parametrize("verb", ["digest", "manifest", "config", "export"])
def test_scratch_is_a_usage_error(verb: str) -> None:
    proc = ocibuild(verb, "scratch", check=False)
    assert proc.returncode == 2 and "scratch" in proc.stderr


def test_layout_verbs(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    digest = push_small(tmp_path, f"oci:{layout}:1")
    assert ocibuild("tag", f"oci:{layout}:1", "2").stdout.strip() == f"oci:{layout}:2@{digest}"
    assert ocibuild("ls", f"oci:{layout}").stdout.split() == ["1", "2"]
    assert ocibuild("digest", f"oci:{layout}:2").stdout.strip() == digest
    index = json.loads((layout / "index.json").read_text())
    assert {m["digest"] for m in index["manifests"]} == {digest}

    tagged = json.loads(ocibuild("tag", "--json", f"oci:{layout}:1", "3").stdout)
    assert tagged == {"reference": f"oci:{layout}:3@{digest}", "digest": digest}
    described = json.loads(ocibuild("digest", "--json", f"oci:{layout}:3").stdout)
    manifest = (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
    assert described == {
        "digest": digest,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": len(manifest),
    }

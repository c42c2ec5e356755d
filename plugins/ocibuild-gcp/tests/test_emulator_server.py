"""The emulators' HTTP server routes, records, and reads chunked bodies."""

from __future__ import annotations

import httpx

from tests.emulators._server import Emulator, Reply, Request, serving


def test_routes_record_and_read_chunked_bodies() -> None:
    emulator = Emulator("echo")

    @emulator.route("PUT", r"/b/([^/]+)")
    def put(request: Request) -> Reply:
        return Reply(201, {"name": request.groups[0], "size": len(request.body)})

    with serving(emulator):
        chunks = iter([b"a" * 10, b"b" * 5])
        answer = httpx.put(f"{emulator.url}/b/x?q=1", content=chunks)
        assert answer.status_code == 201
        assert answer.json() == {"name": "x", "size": 15}
        missing = httpx.get(f"{emulator.url}/nowhere")
        assert missing.status_code == 404
        assert missing.json()["error"]["status"] == "NOT_FOUND"
    (recorded,) = emulator.received("PUT")
    assert recorded.param("q") == "1" and recorded.body == b"a" * 10 + b"b" * 5

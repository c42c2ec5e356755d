"""The plugin's hooks stay light: ocibuild imports every installed plugin and calls its name
hooks whenever it looks up any name, so they must not load the HTTP stack or cryptography;
those load when a deploy, an upload or a token request needs them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("httpx", "cryptography")

PROBE = f"""
import json, sys
import ocibuild.plugins
names = {{kind: ocibuild.plugins.names(kind) for kind in ("deployer", "context_store",
         "pod_spec_mutator")}}
print(json.dumps({{"names": names, "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def test_looking_up_names_loads_no_http_stack_and_no_cryptography() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    out = json.loads(proc.stdout)
    assert {"gcpjob", "gcpserving"} <= set(out["names"]["deployer"])
    assert "gcs" in out["names"]["context_store"]
    assert "gcp_service_account" in out["names"]["pod_spec_mutator"]
    assert out["loaded"] == []

"""Finding a submitted job again when the submit's answer was lost (issue: "settle, don't leave unknown").

A provider that can list its recent requests looks for the one aivp sent: same endpoint, created in
the submit's time window, same input. `same_input` compares what the ledger recorded (inputs in their
record form: the uploaded URL, or the hash of an inline data: URI) with the input the provider echoes.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

def same_input(recorded: Any, remote: Any) -> bool:
    """Whether the provider's copy of an input is the one aivp recorded (extra keys on the provider's side,
    such as defaults it filled in, are allowed)."""
    if isinstance(recorded, dict) and "kind" in recorded and set(recorded) <= {"kind", "path", "sha256", "mime",
                                                                             "bytes", "url"}:
        return _same_file(recorded, remote)
    if isinstance(recorded, dict):
        return isinstance(remote, dict) and all(k in remote and same_input(v, remote[k]) for k, v in recorded.items())
    if isinstance(recorded, list):
        return isinstance(remote, list) and len(recorded) == len(remote) and all(
            same_input(a, b) for a, b in zip(recorded, remote, strict=True))
    if isinstance(recorded, bool) or isinstance(remote, bool):
        return recorded is remote
    if isinstance(recorded, int | float) and isinstance(remote, int | float):
        return float(recorded) == float(remote)
    return bool(recorded == remote or str(recorded) == str(remote))


def _same_file(recorded: dict[str, Any], remote: Any) -> bool:
    """An input file: the URL it was sent as, or (sent inline) the hash of the data: URI's bytes."""
    if not isinstance(remote, str):
        return False
    if recorded.get("url"):
        return bool(remote == recorded["url"])
    if remote.startswith("data:") and recorded.get("sha256"):
        try:
            body = base64.b64decode(remote.split(",", 1)[1])
        except (IndexError, ValueError):
            return False
        return bool(hashlib.sha256(body).hexdigest() == recorded["sha256"])
    return False

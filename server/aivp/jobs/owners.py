"""Which server process drives a job, when several share one project (a desktop client and a CLI run).

Each runner has an owner id "host:pid:nonce" and says it is alive (a heartbeat in the ledger) every
few seconds. A job is only taken over when its owner is dead (its pid is gone on this host) or has
been silent for `STALE_S`.
"""

from __future__ import annotations

import os
import secrets
import socket

HEARTBEAT_S = 5.0  # a server process says it is alive this often
STALE_S = 30.0  # a job whose owner has been silent this long is taken over by another process
HOST = socket.gethostname()
LIVE_OWNERS: set[str] = set()  # owners of runners alive in this process (tests run several in turn)


def new_owner() -> str:
    return f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_dead(owner: str) -> bool:
    """Whether the process behind an owner id is gone (checked on this host; elsewhere the heartbeat decides)."""
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner not in LIVE_OWNERS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False

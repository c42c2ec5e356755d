"""One connection per registry host and options object, shared by the clients that use it.

``ocibuild append --base REG/a --to REG/b`` reads the base through one client and pushes
through another; with a connection each they pinged ``/v2/`` twice, learned the auth challenge
twice and opened a second TCP (and TLS) connection. Sharing one gives them one ping, one token
cache and one pool of kept-alive connections. The pool closes when the last client holding it
closes. Keyed by the options object's identity, not its value: clients built from separate
options (every library call that passes none) keep separate state, as they always had.
"""

from __future__ import annotations

import threading
import weakref

from ._connection import Connection
from ._options import RegistryOptions

__all__ = ["acquire", "release"]

_lock = threading.Lock()
# A live Connection holds its options, so an id here cannot be reused by another options
# object while its entry exists.
_connections: weakref.WeakValueDictionary[tuple[str, int], Connection] = (
    weakref.WeakValueDictionary()
)
_holders: weakref.WeakKeyDictionary[Connection, int] = weakref.WeakKeyDictionary()


def acquire(registry: str, options: RegistryOptions) -> Connection:
    """The shared connection to ``registry`` under ``options``; :func:`release` it when done."""
    key = (registry, id(options))
    with _lock:
        connection = _connections.get(key)
        if connection is None:
            connection = _connections[key] = Connection(registry, options)
        _holders[connection] = _holders.get(connection, 0) + 1
        return connection


def release(connection: Connection, *, held: bool = True) -> None:
    """Let go of ``connection``: its pool closes once nobody holds it (``held=False``: the
    caller had let go already and used it again, so only close what nobody else holds)."""
    with _lock:
        count = max(0, _holders.get(connection, 0) - (1 if held else 0))
        _holders[connection] = count
    if count == 0:
        connection.close()

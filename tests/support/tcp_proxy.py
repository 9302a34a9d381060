"""A TCP proxy that a test can cut and restore, to make a database go away and come back.

`TcpProxy` listens on a local port and relays every connection to the upstream address.
`cut()` drops every relayed connection and stops listening, so that new connections are
refused, as when the database host goes down; `restore()` listens again on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class TcpProxy:
    """Relays connections from a local port to `upstream_host`:`upstream_port`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        """Listen on a free local port and start relaying."""
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None
        self.port = 0
        self.restore()

    @property
    def host(self) -> str:
        """The address to connect to instead of the upstream's."""
        return "127.0.0.1"

    def restore(self) -> None:
        """Listen (again) on the proxy's port and relay new connections."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._stop = threading.Event()
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener, self._stop), name="tcp-proxy", daemon=True
        )
        self._acceptor.start()

    def cut(self) -> None:
        """Stop listening (new connections are refused) and drop every relayed connection."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            dropped, self._sockets = self._sockets, set()
        for sock in dropped:
            with contextlib.suppress(OSError):
                # Linger 0: the peer gets a reset, as from a host that went away.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        """Stop for good."""
        self.cut()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if stop.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(source, sink), name="tcp-proxy-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes from `source` to `sink` until either end closes."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.difference_update((source, sink))
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

"""A TCP forwarder to put between the app and its database, that a test can cut and restore."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from typing import Literal

CutMode = Literal["refuse", "silence"]


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`. `cut()` drops every open connection, then either
    refuses new ones ("refuse": nothing listens, as when the server is down) or accepts them and
    never answers ("silence": as when the host is gone and packets vanish); `restore()` forwards
    again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._mode: CutMode | None = None
        self._listener: socket.socket | None = None
        self._closed = False
        self.port = 0
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True,
                         name=f"tcp-proxy-{self.port}").start()

    def _accept(self, listener: socket.socket) -> None:
        listener.settimeout(0.1)  # a blocked accept() would not notice its socket closing
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            client.settimeout(None)
            with self._lock:
                self._open.add(client)
                silent = self._mode == "silence"
            if silent:
                continue  # held open, never answered, until restore() or close()
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._drop(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._open.add(server)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._drop(source)
        self._drop(sink)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def _drop_all(self) -> None:
        with self._lock:
            doomed = list(self._open)
        for sock in doomed:
            self._drop(sock)

    def cut(self, mode: CutMode = "refuse") -> None:
        """Drop every connection; then refuse new ones, or accept them in silence."""
        with self._lock:
            self._mode = mode
        if mode == "refuse":
            self._stop_listening()
        self._drop_all()

    def restore(self) -> None:
        """Forward again (connections accepted in silence are dropped, as a timed-out client
        would see)."""
        with self._lock:
            was, self._mode = self._mode, None
        if was == "silence":
            self._drop_all()
        if self._listener is None and not self._closed:
            self._listen()

    def close(self) -> None:
        self._closed = True
        self._stop_listening()
        self._drop_all()

    def _stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # stops listening now, even while polled
            listener.close()

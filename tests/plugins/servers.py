"""Real servers for the tests: an S3 server (moto's WSGI app over HTTP, with injectable
faults) and a TCP proxy that can cut database connections mid-stream."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server


@dataclass
class Faults:
    """Answer the next ``before`` requests with 503 without handling them (throttling), and
    the next ``after`` requests with 500 after handling them (a lost response)."""

    before: int = 0
    after: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, kind: str) -> bool:
        with self.lock:
            self.requests += kind == "before"
            if getattr(self, kind) > 0:
                setattr(self, kind, getattr(self, kind) - 1)
                return True
            return False


def _error(start_response: Any, status: str, code: str) -> list[bytes]:
    start_response(status, [("Content-Type", "application/xml")])
    return [f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()]


@contextlib.contextmanager
def s3_server() -> Iterator[tuple[str, Faults]]:
    """moto's S3 over HTTP on a free loopback port; yields (endpoint URL, faults)."""
    from moto.server import DomainDispatcherApplication, create_backend_app

    backend = DomainDispatcherApplication(create_backend_app)
    faults = Faults()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if faults.take("before"):
            return _error(start_response, "503 Slow Down", "SlowDown")
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> None:
            captured.update(status=status, headers=headers)

        body = b"".join(backend(environ, capture))
        if faults.take("after"):
            return _error(start_response, "500 Internal Server Error", "InternalError")
        start_response(captured["status"], captured["headers"])
        return [body]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", faults
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every connection and refuses
    new ones (an outage), ``restore()`` serves again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._flowing = threading.Event()
        self._flowing.set()

    def stall(self) -> None:
        """Keep every connection open and accept new ones, but forward nothing: a database
        that stops answering."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def start(self) -> TcpProxy:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            with contextlib.suppress(OSError):  # the peer went away: stop piping
                while data := source.recv(65536):
                    self._flowing.wait()
                    sink.sendall(data)
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone may not
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()

    def restore(self) -> None:
        self.start()

    def close(self) -> None:
        self._flowing.set()
        self.cut()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

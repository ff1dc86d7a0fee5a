"""A real uvicorn server in a thread of the test process, on a free loopback port, with httpx
clients; tokens of each scope."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

import eventkeep
from eventkeep.aio import AsyncEventStore
from eventkeep.server.app import ServerConfig, build_app
from eventkeep.server.tokens import create_token


class RunningServer:
    def __init__(self, store: eventkeep.EventStore, **config: Any) -> None:
        self.store = store
        self.app = build_app(
            ServerConfig(store_url=store.url, **config), store=AsyncEventStore(store)
        )
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", timeout_graceful_shutdown=1)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        self.tokens = {
            scope: create_token(store, name=f"{scope}-test", scope=scope)[0]
            for scope in ("read", "append", "admin")
        }

    def client(self, scope: str | None = "admin", **kwargs: Any) -> httpx.Client:
        headers = {} if scope is None else {"Authorization": f"Bearer {self.tokens[scope]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

"""The embedded nsqlookupd: a TCP listener for nsqd registrations and the HTTP API.

Runs on the current asyncio loop (tornado serves HTTP on the same loop)::

    lookupd = NSQLookupd(NSQLookupdOptions(tcp_address="127.0.0.1:0", http_address="127.0.0.1:0"))
    await lookupd.start()      # lookupd.tcp_port / lookupd.http_port are now set
    ...
    await lookupd.stop()
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

import tornado.httpserver
import tornado.netutil

from ..listeners import stop_accepting
from .http_api import LookupdAPI, make_application
from .options import VERSION, NSQLookupdOptions, parse_address
from .protocol_v1 import LookupSessionV1
from .registration_db import RegistrationDB

log = logging.getLogger("nsqcli.broker.nsqlookupd")

_READ_SIZE = 64 * 1024


def _format_peer(address: tuple) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class NSQLookupd:
    def __init__(
        self,
        options: NSQLookupdOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options or NSQLookupdOptions()
        self.db = RegistrationDB(clock)
        self.tcp_port: int | None = None
        self.http_port: int | None = None
        self._tcp_server: asyncio.AbstractServer | None = None
        self._http_server: tornado.httpserver.HTTPServer | None = None
        self._peers: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self._hostname = socket.gethostname()

    @property
    def running(self) -> bool:
        return self._tcp_server is not None

    @property
    def tcp_address(self) -> str:
        return f"{self._host(self.options.tcp_address)}:{self.tcp_port}"

    @property
    def http_address(self) -> str:
        return f"{self._host(self.options.http_address)}:{self.http_port}"

    @staticmethod
    def _host(address: str) -> str:
        host = parse_address(address)[0]
        return f"[{host}]" if ":" in host else host

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("nsqlookupd is already running")
        tcp_host, tcp_port = parse_address(self.options.tcp_address)
        http_host, http_port = parse_address(self.options.http_address)
        self._tcp_server = await asyncio.start_server(self._serve_peer, tcp_host, tcp_port)
        self.tcp_port = self._tcp_server.sockets[0].getsockname()[1]
        try:
            sockets = tornado.netutil.bind_sockets(http_port, http_host)
        except OSError:
            await self._close_tcp()
            raise
        self._http_server = tornado.httpserver.HTTPServer(make_application(LookupdAPI(self)))
        self._http_server.add_sockets(sockets)
        self.http_port = sockets[0].getsockname()[1]
        log.info("nsqlookupd: TCP on %s, HTTP on %s", self.tcp_address, self.http_address)

    async def stop(self) -> None:
        """Close the listeners and every connection; registrations of connected peers go."""
        if self._http_server is not None:
            self._http_server.stop()
            await self._http_server.close_all_connections()
            self._http_server = None
        await self._close_tcp()

    async def _close_tcp(self) -> None:
        server, self._tcp_server = self._tcp_server, None
        if server is None:
            return
        await stop_accepting(server)
        server.close()
        for writer in list(self._peers):
            writer.close()
        tasks = list(self._peers.values())
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await server.wait_closed()

    def identify_reply(self) -> dict:
        """What nsqlookupd answers an nsqd's IDENTIFY with."""
        return {
            "tcp_port": self.tcp_port,
            "http_port": self.http_port,
            "version": VERSION,
            "broadcast_address": self.options.broadcast_address,
            "hostname": self._hostname,
        }

    async def _serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._peers[writer] = task
        remote = _format_peer(writer.get_extra_info("peername") or ("?", 0))
        session = LookupSessionV1(self.db, remote, self.identify_reply,
                                  self.options.max_identify_body_size)
        log.debug("nsqlookupd: new peer %s", remote)
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                out = session.receive_data(data)
                if out.data:
                    writer.write(out.data)
                    await writer.drain()
                if out.close:
                    break
        except (ConnectionError, OSError) as error:
            log.debug("nsqlookupd: peer %s: %s", remote, error)
        finally:
            removed = session.connection_lost()
            if removed:
                log.debug("nsqlookupd: peer %s gone, unregistered %d", remote, len(removed))
            self._peers.pop(writer, None)
            writer.close()

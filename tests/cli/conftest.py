"""Helpers for the CLI tests: CliRunner with stdout, stderr and exit code kept apart."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading

import pytest
from click.testing import CliRunner, Result



class Invocation:
    """A finished CliRunner run; ``str()`` shows all three channels for assertion messages."""

    def __init__(self, result: Result) -> None:
        self.result = result
        self.exit_code = result.exit_code
        self.stdout_bytes = result.stdout_bytes
        self.stdout = result.stdout
        self.stderr = result.stderr

    def __repr__(self) -> str:
        exc = self.result.exception
        trace = ""
        if exc is not None and not isinstance(exc, SystemExit):
            import traceback

            trace = "".join(traceback.format_exception(exc))
        return (f"exit={self.exit_code}\n--- stdout ---\n{self.stdout[:2000]}\n"
                f"--- stderr ---\n{self.stderr[:2000]}\n{trace}")


@pytest.fixture
def invoke():
    """``invoke(command, args, input=None, env=None)`` -> Invocation."""

    def run(command, args, input=None, env=None) -> Invocation:
        runner = CliRunner()
        clean_env = {"NSQD_TCP_ADDRESS": None, "NSQLOOKUPD_HTTP_ADDRESS": None,
                     "NSQ_AUTH_SECRET": None}
        clean_env.update(env or {})
        return Invocation(runner.invoke(command, [str(a) for a in args], input=input,
                                        env=clean_env, catch_exceptions=True))

    return run


@pytest.fixture
def tail_bodies(invoke):
    """Read ``n`` messages of ``topic`` back with nsq-tail (json, so binary bodies survive)."""
    import base64
    import json

    from nsqcli.tail.command import command as tail_command

    def read(nsqd, topic, n, channel="check"):
        result = invoke(tail_command, ["--topic", topic, "--channel", channel, "-n", n,
                                       "--format", "json", "--nsqd-tcp-address", nsqd.tcp_address])
        assert result.exit_code == 0, result
        bodies = []
        for line in result.stdout_bytes.splitlines():
            item = json.loads(line)
            if "body" in item:
                bodies.append(item["body"].encode("utf-8"))
            else:
                bodies.append(base64.b64decode(item["body_base64"]))
        return bodies

    return read


@pytest.fixture
def run_tool():
    """Run an installed console script in a subprocess (text=False)."""

    def run(args, input=None, timeout=60, **kwargs):
        env = dict(os.environ)
        for key in ("NSQD_TCP_ADDRESS", "NSQLOOKUPD_HTTP_ADDRESS", "NSQ_AUTH_SECRET"):
            env.pop(key, None)
        return subprocess.run(args, input=input, capture_output=True, timeout=timeout, env=env,
                              **kwargs)

    return run


@pytest.fixture
def http_server():
    """python -m http.server, on a free port (what a user may point a tool at by mistake)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()

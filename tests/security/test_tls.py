"""TLS against nsqds with certificates from private CAs (trustme): the server certificate and its
host name are verified by default, skipping that is explicit and warned about, client
certificates work, and a tls_required nsqd refuses plaintext. Library and tools alike; the tools'
failures are one line on stderr (exit 1), never a traceback or an endless retry loop.

(tests/lib/test_conn_upgrades.py covers TLS + compression against the fake nsqd and the
tls_options mapping; tests/cli/test_pub_tail_tls_auth.py a verified nsq-pub/nsq-tail round trip.)
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl

import pytest
from channels import left_in_flight
from security_peers import IDENTIFY_JSON, _ThreadedServer
from security_tools import assert_one_line_error, error_lines, run_tool

from nsqcli.lib import AsyncConn
from nsqcli.lib.protocol.commands import CommandParser
from nsqcli.lib.protocol.constants import FRAME_TYPE_RESPONSE
from nsqcli.lib.protocol.errors import Error, NSQError
from nsqcli.lib.protocol.frames import encode_frame
from nsqcli.lib.tls import TLSHandshakeError

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """PEM files: the nsqd CA and certificates, a CA nobody uses, a client CA and certificate."""
    folder = tmp_path_factory.mktemp("pki")
    ca, other_ca, client_ca = trustme.CA(), trustme.CA(), trustme.CA()
    files = {}

    def write(name, blob):
        path = folder / f"{name}.pem"
        blob.write_to_path(str(path))
        files[name] = str(path)

    for name, authority in (("ca", ca), ("other_ca", other_ca), ("client_ca", client_ca)):
        write(name, authority.cert_pem)
    for name, cert in (("server", ca.issue_cert("127.0.0.1", "localhost")),
                       ("elsewhere", ca.issue_cert("nsqd.elsewhere.example")),
                       ("client", client_ca.issue_cert("client@example"))):
        write(f"{name}_cert", cert.cert_chain_pems[0])
        write(f"{name}_key", cert.private_key_pem)
    return files


@pytest.fixture
def tls_nsqd(nsqd_factory, pki):
    # tcp-https: TLS required on the TCP port; /stats stays readable over plain HTTP for the checks
    return nsqd_factory(tls_cert=pki["server_cert"], tls_key=pki["server_key"],
                        tls_required="tcp-https")


@pytest.fixture
def misnamed_nsqd(nsqd_factory, pki):
    """A certificate from the trusted CA, for another host name."""
    return nsqd_factory(tls_cert=pki["elsewhere_cert"], tls_key=pki["elsewhere_key"])


@pytest.fixture(params=["require", "require-verify"])
def client_auth_nsqd(nsqd_factory, pki, request):
    return nsqd_factory(tls_cert=pki["server_cert"], tls_key=pki["server_key"],
                        tls_required="tcp-https",
                        tls_client_auth_policy=request.param, tls_root_ca_file=pki["client_ca"])


async def publish_once(nsqd, topic: str, **conn_kwargs) -> AsyncConn:
    conn = AsyncConn(nsqd.host, nsqd.tcp_port, timeout=2, **conn_kwargs)
    try:
        await conn.wait_ready(3)
        await asyncio.wait_for(conn.publish(topic, b"over tls"), 3)
    finally:
        conn.close()
    return conn


def topic_count(nsqd, topic: str) -> int:
    stats = nsqd.topic_stats(topic)
    return 0 if stats is None else stats["message_count"]


# ---- the library --------------------------------------------------------------------------------

def test_trusted_ca_verifies_and_publishes(tls_nsqd, pki):
    asyncio.run(publish_once(tls_nsqd, "tls_ok", tls_v1=True, tls_options={"ca_certs": pki["ca"]}))
    assert topic_count(tls_nsqd, "tls_ok") == 1


@pytest.mark.parametrize("tls_options, reason", [
    (None, "certificate verify failed"),  # the default: system CAs, which do not know ours
    ({"ca_certs": "other_ca"}, "certificate verify failed"),
], ids=["default-system-cas", "wrong-ca"])
def test_untrusted_certificate_is_refused(tls_nsqd, pki, tls_options, reason):
    if tls_options is not None:
        tls_options = {key: pki[value] for key, value in tls_options.items()}
    with pytest.raises(TLSHandshakeError) as caught:
        asyncio.run(publish_once(tls_nsqd, "tls_refused", tls_v1=True, tls_options=tls_options))
    assert reason in str(caught.value) and tls_nsqd.tcp_address in str(caught.value)
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)
    assert topic_count(tls_nsqd, "tls_refused") == 0


def test_wrong_host_name_is_refused(misnamed_nsqd, pki):
    with pytest.raises(TLSHandshakeError) as caught:
        asyncio.run(publish_once(misnamed_nsqd, "tls_misnamed", tls_v1=True,
                                 tls_options={"ca_certs": pki["ca"]}))
    assert "mismatch" in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_skipping_verification_must_be_explicit(misnamed_nsqd, pki):
    asyncio.run(publish_once(misnamed_nsqd, "tls_insecure", tls_v1=True,
                             tls_options={"cert_reqs": ssl.CERT_NONE}))
    assert topic_count(misnamed_nsqd, "tls_insecure") == 1


def test_tls_required_nsqd_refuses_plaintext(tls_nsqd):
    with pytest.raises(NSQError) as caught:
        asyncio.run(publish_once(tls_nsqd, "tls_plain"))
    assert caught.value.code == "E_INVALID"
    assert topic_count(tls_nsqd, "tls_plain") == 0


def test_client_certificate(client_auth_nsqd, pki):
    good = {"ca_certs": pki["ca"], "certfile": pki["client_cert"], "keyfile": pki["client_key"]}
    asyncio.run(publish_once(client_auth_nsqd, "tls_client", tls_v1=True, tls_options=good))
    assert topic_count(client_auth_nsqd, "tls_client") == 1
    with pytest.raises(Error):  # nsqd refuses the handshake (TLS 1.3: on the first read)
        asyncio.run(publish_once(client_auth_nsqd, "tls_no_client", tls_v1=True,
                                 tls_options={"ca_certs": pki["ca"]}))
    assert topic_count(client_auth_nsqd, "tls_no_client") == 0


def test_a_root_ca_without_a_policy_asks_for_no_client_certificate(nsqd_factory, pki):
    nsqd = nsqd_factory(tls_cert=pki["server_cert"], tls_key=pki["server_key"],
                        tls_root_ca_file=pki["client_ca"], tls_required="tcp-https")
    # not from the client CA: refused if nsqd asked for it, but nsqd does not ask
    unverifiable = {"ca_certs": pki["ca"], "certfile": pki["elsewhere_cert"],
                    "keyfile": pki["elsewhere_key"]}
    asyncio.run(publish_once(nsqd, "no_policy", tls_v1=True, tls_options=unverifiable))
    assert topic_count(nsqd, "no_policy") == 1


def test_a_client_certificate_policy_requires_tls_everywhere(nsqd_factory, pki):
    nsqd = nsqd_factory(tls_cert=pki["server_cert"], tls_key=pki["server_key"],
                        tls_client_auth_policy="require-verify", tls_root_ca_file=pki["client_ca"])
    status, body = nsqd.http("GET", "/ping")  # as --tls-required=true
    assert status == 403 and json.loads(body)["message"] == "TLS_REQUIRED"
    with pytest.raises(NSQError) as caught:
        asyncio.run(publish_once(nsqd, "plain"))
    assert caught.value.code == "E_INVALID"


class ClientCertificateRequired(_ThreadedServer):
    """IDENTIFY answered with tls_v1, then a TLS server (blocking Python ssl, which sends its
    alerts as a Go nsqd does) that requires a client certificate from ``client_ca``."""

    host = "127.0.0.1"

    def __init__(self, pki) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(pki["server_cert"], pki["server_key"])
        self._context.load_verify_locations(pki["client_ca"])
        self._context.verify_mode = ssl.CERT_REQUIRED
        super().__init__()

    def serve(self, sock: socket.socket) -> None:
        parser = CommandParser()
        while not any(c.name == b"IDENTIFY" for c in parser.feed(sock.recv(65536))):
            pass
        reply = json.dumps({**IDENTIFY_JSON, "tls_v1": True}).encode()
        sock.sendall(encode_frame(FRAME_TYPE_RESPONSE, reply))
        try:
            with self._context.wrap_socket(sock, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass  # the client sent no certificate: the alert is on its way

    @property
    def tcp_port(self) -> int:
        return self.port


def test_client_certificate_refused_after_the_handshake_is_a_tls_error(pki):
    # TLS 1.3: the client's side of the handshake is done before nsqd looks at its (missing)
    # certificate, so the refusal arrives as an alert on the first read: still a TLS error
    with ClientCertificateRequired(pki) as peer:
        with pytest.raises(TLSHandshakeError) as caught:
            asyncio.run(publish_once(peer, "refused", tls_v1=True,
                                     tls_options={"ca_certs": pki["ca"]}))
    assert peer.address in str(caught.value)
    assert isinstance(caught.value.__cause__, ssl.SSLError)


# ---- the tools (subprocesses) ---------------------------------------------------------------

def tool_args(tool: str, tmp_path) -> list[str]:
    if tool == "nsq-tail":
        return [tool, "--topic", "tls_tool", "-n", "1"]
    if tool == "nsq-pub":
        return [tool, "--topic", "tls_tool", "-m", "hello", "--retry-timeout", "1s"]
    if tool == "nsq-to-file":
        return [tool, "--topic", "tls_tool", "--output-dir", str(tmp_path)]
    archive = tmp_path / "tls_tool.host.2026-01-01_00.log"
    archive.write_bytes(b"hello\n")
    return [tool, "--topic", "tls_tool", "--retry-timeout", "1s", str(archive)]


TOOLS = ["nsq-tail", "nsq-pub", "nsq-to-file", "nsq-replay"]


@pytest.mark.parametrize("tool", TOOLS)
def test_tools_refuse_a_certificate_from_the_wrong_ca(tool, tls_nsqd, pki, tmp_path):
    result = run_tool([*tool_args(tool, tmp_path), "--tls-ca-file", pki["other_ca"],
                       "--nsqd-tcp-address", tls_nsqd.tcp_address])
    assert result.returncode == 1, result
    assert_one_line_error(result, "certificate verify failed")


@pytest.mark.parametrize("tool", ["nsq-tail", "nsq-pub"])
def test_tools_verify_with_the_system_cas_by_default(tool, tls_nsqd, tmp_path):
    result = run_tool([*tool_args(tool, tmp_path), "--tls", "--nsqd-tcp-address",
                       tls_nsqd.tcp_address])
    assert result.returncode == 1, result
    assert_one_line_error(result, "certificate verify failed")


@pytest.mark.parametrize("tool", ["nsq-tail", "nsq-pub"])
def test_tools_refuse_a_certificate_for_another_host(tool, misnamed_nsqd, pki, tmp_path):
    result = run_tool([*tool_args(tool, tmp_path), "--tls-ca-file", pki["ca"],
                       "--nsqd-tcp-address", misnamed_nsqd.tcp_address])
    assert result.returncode == 1, result
    assert_one_line_error(result, "mismatch")


@pytest.mark.parametrize("tool", TOOLS)
def test_tools_refused_plaintext_by_a_tls_required_nsqd(tool, tls_nsqd, tmp_path):
    result = run_tool([*tool_args(tool, tmp_path), "--nsqd-tcp-address", tls_nsqd.tcp_address])
    assert result.returncode == 1, result
    lines = error_lines(result.stderr)
    assert "Traceback" not in result.stderr and "E_INVALID" in lines[0], result
    # producers add their summary ("1 of 1 records were not acknowledged by nsqd")
    assert len(lines) == (2 if tool in ("nsq-pub", "nsq-replay") else 1), result
    assert topic_count(tls_nsqd, "tls_tool") == 0


def test_insecure_skip_verify_publishes_and_warns_in_every_producer(misnamed_nsqd, tmp_path):
    for tool in ("nsq-pub", "nsq-replay"):
        result = run_tool([*tool_args(tool, tmp_path), "--tls-insecure-skip-verify",
                           "--nsqd-tcp-address", misnamed_nsqd.tcp_address])
        assert result.returncode == 0, result
        assert any("NOT verified" in line for line in error_lines(result.stderr)), result
    result = run_tool([*tool_args("nsq-tail", tmp_path), "--tls-insecure-skip-verify",
                       "--nsqd-tcp-address", misnamed_nsqd.tcp_address, "--channel", "c"])
    assert result.returncode == 0 and result.stdout == "hello\n", result
    assert "NOT verified" in result.stderr, result
    assert topic_count(misnamed_nsqd, "tls_tool") == 2


def test_tools_with_a_client_certificate(client_auth_nsqd, pki, tmp_path):
    client = ["--tls-ca-file", pki["ca"], "--nsqd-tcp-address", client_auth_nsqd.tcp_address]
    result = run_tool([*tool_args("nsq-pub", tmp_path), *client, "--tls-cert", pki["client_cert"],
                       "--tls-key", pki["client_key"]])
    assert result.returncode == 0, result
    result = run_tool([*tool_args("nsq-tail", tmp_path), *client, "--tls-cert", pki["client_cert"],
                       "--tls-key", pki["client_key"], "--channel", "c"])
    assert result.returncode == 0 and result.stdout == "hello\n", result
    result = run_tool([*tool_args("nsq-pub", tmp_path), *client])  # no client certificate
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and len(error_lines(result.stderr)) == 1, result


def test_one_bad_nsqd_of_a_cluster_is_named_once_and_the_others_are_consumed(
        nsqd_factory, nsqlookupd, pki):
    """A lookupd-listed nsqd that refuses plaintext does not stop nsq-tail: one warning names it
    and the messages of the other nsqd still arrive (nothing is published before the warning,
    so the tool must have kept running after the failure)."""
    import os
    import subprocess
    import time

    from security_tools import VENV_BIN

    registered = {"lookupd_tcp_addresses": [nsqlookupd.tcp_address]}
    bad = nsqd_factory(tls_cert=pki["server_cert"], tls_key=pki["server_key"],
                       tls_required="tcp-https", **registered)
    good = nsqd_factory(**registered)
    for nsqd in (bad, good):
        nsqd.create_topic("split")
    deadline = time.monotonic() + 10
    while len(nsqlookupd.http_json("GET", "/lookup", {"topic": "split"})["producers"]) < 2:
        assert time.monotonic() < deadline, "lookupd never listed both nsqds"
        time.sleep(0.05)
    env = {k: v for k, v in os.environ.items() if k != "NSQLOOKUPD_HTTP_ADDRESS"}
    tail = subprocess.Popen([str(VENV_BIN / "nsq-tail"), "--topic", "split", "--channel", "c",
                             "-n", "1", "--lookupd-http-address", nsqlookupd.http_address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        warning = tail.stderr.readline().decode()
        assert "warning" in warning and bad.tcp_address in warning and "E_INVALID" in warning
        assert "consuming from the other nsqds" in warning
        good.pub("split", "from the good nsqd")
        out, err = tail.communicate(timeout=20)
    finally:
        tail.kill()
    assert tail.returncode == 0, err
    assert out == b"from the good nsqd\n" and err.strip() == b"", err


def test_reader_close_over_tls_leaves_nothing_in_flight_at_nsqd(tls_nsqd, pki):
    """The graceful close (flush, half-close, wait for nsqd's EOF) works under TLS too: every
    FIN reaches nsqd before the connection ends, and nsqd's EOF is not reported as an error."""
    import nsqcli.lib as nsq

    tls_nsqd.mpub("graceful_tls", [b"m%d" % i for i in range(3000)])
    conns = []

    async def main():
        seen = []
        reader = nsq.Reader("graceful_tls", "c", lambda m: seen.append(m.body) or True,
                            nsqd_tcp_addresses=tls_nsqd.tcp_address, max_in_flight=500,
                            tls_v1=True, tls_options={"ca_certs": pki["ca"]})
        while len(seen) < 1000:
            await asyncio.sleep(0.005)
        conns.extend(reader.conns.values())
        await reader.close()
        return seen

    seen = asyncio.run(main())
    stats = tls_nsqd.channel_stats("graceful_tls", "c")
    late = left_in_flight(conns)  # nsqd sent it after our side was shut: see there
    assert stats["in_flight_count"] == late and stats["depth"] == 3000 - len(seen) - late
    assert conns and all(conn.closed() and conn.close_error is None for conn in conns)
    assert all(conn._half_closed for conn in conns)  # shut our side and waited for nsqd's EOF

"""--tls* and --auth-secret* end to end: nsq-pub and nsq-tail against nsqds that need them."""

from __future__ import annotations

import pytest
from auth_server import AuthServer

from nsqcli.pub.command import command as pub
from nsqcli.tail.command import command as tail

GOOD_SECRET = "let-me-in-7"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    other_ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    paths = {name: folder / f"{name}.pem" for name in ("cert", "key", "ca", "other_ca")}
    cert.private_key_pem.write_to_path(str(paths["key"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    other_ca.cert_pem.write_to_path(str(paths["other_ca"]))
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture
def tls_nsqd(nsqd_factory, certs):
    return nsqd_factory(tls_cert=certs["cert"], tls_key=certs["key"], tls_required=True)


def test_pub_and_tail_over_verified_tls(invoke, tls_nsqd, certs):
    address = ["--nsqd-tcp-address", tls_nsqd.tcp_address]
    result = invoke(pub, ["--topic", "t", "--tls-ca-file", certs["ca"], "-m", "secure", *address])
    assert result.exit_code == 0, result
    result = invoke(tail, ["--topic", "t", "-n", "1", "--tls", "--tls-ca-file", certs["ca"],
                           "--snappy", *address])
    assert result.exit_code == 0, result
    assert result.stdout_bytes == b"secure\n"


def test_untrusted_certificate_is_a_one_line_error(invoke, tls_nsqd, certs):
    result = invoke(pub, ["--topic", "t", "--tls-ca-file", certs["other_ca"], "-m", "x",
                          "--nsqd-tcp-address", tls_nsqd.tcp_address])
    assert result.exit_code == 1, result
    assert "certificate" in result.stderr.lower() and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result


def test_insecure_skip_verify_works_and_warns(invoke, tls_nsqd):
    result = invoke(pub, ["--topic", "t", "--tls-insecure-skip-verify", "-m", "x",
                          "--nsqd-tcp-address", tls_nsqd.tcp_address])
    assert result.exit_code == 0, result
    assert "NOT verified" in result.stderr


def test_plaintext_to_a_tls_required_nsqd_fails_clearly(invoke, tls_nsqd):
    result = invoke(pub, ["--topic", "t", "-m", "x", "--nsqd-tcp-address", tls_nsqd.tcp_address])
    assert result.exit_code == 1, result
    assert "E_INVALID" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def auth_nsqd(nsqd_factory):
    server = AuthServer(secret=GOOD_SECRET)
    yield nsqd_factory(auth_http_addresses=[server.address])
    server.close()


def test_auth_secret_from_flag_env_and_file(invoke, auth_nsqd, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(GOOD_SECRET + "\n")
    address = ["--nsqd-tcp-address", auth_nsqd.tcp_address]
    for args, env in ((["--auth-secret", GOOD_SECRET], None), ([], {"NSQ_AUTH_SECRET": GOOD_SECRET}),
                      (["--auth-secret-file", secret_file], None)):
        result = invoke(pub, ["--topic", "t", "-m", "x", *address, *args], env=env)
        assert result.exit_code == 0, result
    result = invoke(tail, ["--topic", "t", "-n", "3", *address], env={"NSQ_AUTH_SECRET": GOOD_SECRET})
    assert result.exit_code == 0, result
    assert result.stdout_bytes == b"x\nx\nx\n"


def test_wrong_or_missing_secret_fails_without_echoing_it(invoke, auth_nsqd):
    wrong = "wrong-secret-123"
    result = invoke(pub, ["--topic", "t", "-m", "x", "--auth-secret", wrong, "-vv",
                          "--nsqd-tcp-address", auth_nsqd.tcp_address])
    assert result.exit_code == 1, result
    assert "E_AUTH_FAILED" in result.stderr
    assert wrong not in result.stderr and wrong not in result.stdout
    missing = invoke(pub, ["--topic", "t", "-m", "x", "--nsqd-tcp-address", auth_nsqd.tcp_address])
    assert missing.exit_code == 1, missing
    assert "auth" in missing.stderr.lower() and "Traceback" not in missing.stderr

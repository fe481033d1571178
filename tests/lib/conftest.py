"""Fixtures shared by the library tests."""

import pytest


@pytest.fixture
def tls_files(tmp_path):
    """(cert, key, ca, other_ca) PEM paths: an nsqd certificate for 127.0.0.1/localhost from a
    fresh CA, that CA, and a CA that signed nothing."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path, ca_path = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    return str(cert_path), str(key_path), str(ca_path), str(other_ca)

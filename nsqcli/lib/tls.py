"""``tls_options`` -> ``ssl.SSLContext`` (verification on unless explicitly turned off).

pynsq documented ``tls_options`` as keyword arguments for the removed ``ssl.wrap_socket()``, so
code in the wild passes ``cert_reqs``, ``ca_certs``, ``certfile``, ``keyfile``, ``ssl_version``,
``ciphers`` and ``check_hostname``. Those keys are mapped onto a client context here; a ready
``ssl.SSLContext`` is used as given.
"""

from __future__ import annotations

import ssl
from typing import Any, Callable, Mapping, TypeVar

import re

from .protocol.errors import Error, LocalProtocolError

__all__ = ["TLS_OPTION_KEYS", "TLSFileError", "TLSHandshakeError", "make_ssl_context"]

TLS_OPTION_KEYS = frozenset(
    {"cert_reqs", "ca_certs", "certfile", "keyfile", "ssl_version", "ciphers", "check_hostname"}
)

# ssl_version pins one protocol version, as it did with wrap_socket
_PINNED_VERSIONS = {
    getattr(ssl, "PROTOCOL_TLSv1", object()): ssl.TLSVersion.TLSv1,
    getattr(ssl, "PROTOCOL_TLSv1_1", object()): ssl.TLSVersion.TLSv1_1,
    getattr(ssl, "PROTOCOL_TLSv1_2", object()): ssl.TLSVersion.TLSv1_2,
}
_NEGOTIATED_VERSIONS = {ssl.PROTOCOL_TLS, ssl.PROTOCOL_TLS_CLIENT}


class TLSHandshakeError(Error):
    """The TLS handshake with nsqd failed (certificate not trusted, wrong host name, ...)."""


class TLSFileError(LocalProtocolError):
    """A CA, certificate or key file could not be loaded; the message names the file."""


def _ssl_reason(exc: BaseException) -> str:
    """OpenSSL's words without the C source position ("[SSL] PEM lib (_ssl.c:3905)")."""
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
        return exc.strerror
    text = re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc))
    if getattr(exc, "library", None) == "SSL" and "PEM lib" in text:
        return "not a PEM file of the expected kind"
    return text


T = TypeVar("T")


def _load(what: str, path: str | None, load: Callable[[], T]) -> T:
    try:
        return load()
    except (ssl.SSLError, OSError) as exc:
        raise TLSFileError(f"cannot load the TLS {what} {path}: {_ssl_reason(exc)}") from exc


def make_ssl_context(tls_options: ssl.SSLContext | Mapping[str, Any] | None) -> ssl.SSLContext:
    """A client SSLContext for ``tls_options`` (None -> system CAs, certificate + host checked)."""
    if isinstance(tls_options, ssl.SSLContext):
        return tls_options
    if tls_options is None:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not isinstance(tls_options, Mapping):
        raise TypeError(
            f"tls_options must be a dict or an ssl.SSLContext, not {type(tls_options).__name__}"
        )
    unknown = set(tls_options) - TLS_OPTION_KEYS
    if unknown:
        raise ValueError(
            f"unknown tls_options key(s) {sorted(unknown)}; known: {sorted(TLS_OPTION_KEYS)}"
        )
    ca_certs = tls_options.get("ca_certs")
    # with a CA file only that CA is trusted (else the system's)
    context = _load("CA file", ca_certs, lambda: ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=ca_certs))
    cert_reqs = tls_options.get("cert_reqs", ssl.CERT_REQUIRED)
    if cert_reqs not in (ssl.CERT_NONE, ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED):
        raise ValueError(f"tls_options cert_reqs must be an ssl.CERT_* constant, got {cert_reqs!r}")
    check_hostname = tls_options.get("check_hostname", cert_reqs != ssl.CERT_NONE)
    if check_hostname and cert_reqs == ssl.CERT_NONE:
        raise ValueError("tls_options: check_hostname=True needs certificate verification "
                         "(cert_reqs=ssl.CERT_NONE turns it off)")
    context.check_hostname = bool(check_hostname)  # must precede verify_mode=CERT_NONE
    context.verify_mode = ssl.VerifyMode(cert_reqs)
    certfile = tls_options.get("certfile")
    if certfile:
        keyfile = tls_options.get("keyfile")
        what = "certificate" if not keyfile or keyfile == certfile else f"key {keyfile} or certificate"
        _load(what, certfile, lambda: context.load_cert_chain(certfile, keyfile))
    elif tls_options.get("keyfile"):
        raise ValueError("tls_options keyfile given without certfile")
    if tls_options.get("ciphers"):
        context.set_ciphers(tls_options["ciphers"])
    version = tls_options.get("ssl_version")
    if version is not None and version not in _NEGOTIATED_VERSIONS:
        pinned = _PINNED_VERSIONS.get(version)
        if pinned is None:
            raise ValueError(f"tls_options ssl_version {version!r} is not supported")
        context.minimum_version = pinned
        context.maximum_version = pinned
    return context

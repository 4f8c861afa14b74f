"""Mutual TLS for nepid's TCP listener: a private CA, certificates, SSL contexts, addresses.

``nepid certs --tls-dir DIR`` makes (once) a CA and a server certificate for this host's
names and addresses, and a client certificate per ``--client NAME``:

    DIR/ca.crt  DIR/ca.key  DIR/server.crt  DIR/server.key  DIR/clients/NAME.{crt,key}

Keys are 0600, the directories nepi creates 0700. Certificates are ECDSA P-256; the server
certificate can only serve (serverAuth) and client certificates can only be clients
(clientAuth). A client needs ``ca.crt`` (to check the server) and its own pair.

How a TLS client authenticates: on the TLS listener, the client certificate, verified by
the TLS handshake against DIR/ca.crt (TLS >= 1.2, a certificate is required), *is* the
credential; the secret of ``run/secret`` is not asked for there. That secret is made anew
at every nepid start and proves only that the caller can read the owner-only ``run/``
directory -- a local fact. Copying it to other hosts would take it out of that directory
and break every remote client at each restart, while a client certificate is made for
exactly this (it names the client, can expire, and only the holder of ca.key can issue
one). The rest of the handshake stays: it is still the only way in before any method
runs, with the same deadline, size cap, serializer and role checks, and the Unix socket
still demands the secret from a peer of our own uid.
"""

from __future__ import annotations   # annotations name cryptography types, loaded lazily

import datetime
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
from typing import TYPE_CHECKING, Iterable, List, NamedTuple, Optional, Tuple

from nepi.errors import NepiError
from nepi.util.files import write_atomic, write_json_atomic
from nepi.util.rootfiles import LISTEN

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

_logger = logging.getLogger("nepi.rpc.tls")

CA_DAYS = 3650
LEAF_DAYS = 825
LISTEN_FILE = LISTEN     # in an experiment root dir: nepid's persisted --listen

_CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


class TlsError(NepiError):
    """A TLS directory, name or address nepi cannot use (worded for the user)."""


class TlsDir:
    """Where ``nepid certs`` keeps what it makes."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    ca_cert = property(lambda self: os.path.join(self.path, "ca.crt"))
    ca_key = property(lambda self: os.path.join(self.path, "ca.key"))
    server_cert = property(lambda self: os.path.join(self.path, "server.crt"))
    server_key = property(lambda self: os.path.join(self.path, "server.key"))
    clients_dir = property(lambda self: os.path.join(self.path, "clients"))

    def client_cert(self, name: str) -> str:
        return os.path.join(self.clients_dir, check_client_name(name) + ".crt")

    def client_key(self, name: str) -> str:
        return os.path.join(self.clients_dir, check_client_name(name) + ".key")

    def client_names(self) -> List[str]:
        if not os.path.isdir(self.clients_dir):
            return []
        return sorted(name[:-4] for name in os.listdir(self.clients_dir)
                      if name.endswith(".crt") and
                      os.path.exists(os.path.join(self.clients_dir, name[:-4] + ".key")))


class ClientFiles(NamedTuple):
    ca: str
    cert: str
    key: str


def check_client_name(name: str) -> str:
    if not isinstance(name, str) or not _CLIENT_NAME.match(name):
        raise TlsError("bad client name %r: letters, digits, '.', '_' and '-' (at most 64, "
                       "not starting with '.' or '-')" % (name,))
    return name


def _check_host(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not _DNS_NAME.match(name):
        raise TlsError("bad host name %r for the server certificate" % (name,))
    return name.rstrip(".").lower()


def host_names(extra: Iterable[str] = ()) -> List[str]:
    """This host's names and loopback addresses (a detected name that is not a valid
    DNS name is left out), then ``extra`` (checked; duplicates dropped)."""
    names: List[str] = []
    for name in [socket.gethostname(), socket.getfqdn(), "localhost", "127.0.0.1", "::1"]:
        try:
            names.append(_check_host(name))
        except TlsError as e:
            _logger.info("left out of the server certificate: %s", e)
    for name in extra:
        names.append(_check_host(name))
    return list(dict.fromkeys(names))


# ---- certificates -----------------------------------------------------------------------

def _crypto():
    """cryptography, imported when certificates are made or read: every daemon and CLI
    process imports this module for its SSL contexts and addresses, and loading
    cryptography's x509 costs ~30 ms of their start-up."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    return x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    return ec.generate_private_key(ec.SECP256R1())


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def issue(ca_cert: x509.Certificate, ca_key, common_name: str, usage: str,
          names: Iterable[str] = (), key=None, not_before: Optional[datetime.datetime] = None,
          not_after: Optional[datetime.datetime] = None) -> Tuple[x509.Certificate, object]:
    """A leaf certificate signed by the CA: ``usage`` "server" (with ``names`` as subject
    alternative names) or "client". Returns (certificate, private key)."""
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    key = key or _new_key()
    not_before = not_before or _now() - datetime.timedelta(minutes=5)
    not_after = not_after or not_before + datetime.timedelta(days=LEAF_DAYS)
    purpose = {"server": ExtendedKeyUsageOID.SERVER_AUTH,
               "client": ExtendedKeyUsageOID.CLIENT_AUTH}[usage]
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca_cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=True, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=False,
                   crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    names = list(names)
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _make_ca() -> Tuple[x509.Certificate, object]:
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         "nepid CA (%s)" % socket.gethostname())])
    now = _now() - datetime.timedelta(minutes=5)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def cert_pem(cert: x509.Certificate) -> bytes:
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_pair(cert_path: str, key_path: str, cert, key) -> None:
    """Key first, 0600 from its creation on (write_atomic starts from a 0600 temp file)."""
    write_atomic(key_path, key_pem(key), mode=0o600)
    write_atomic(cert_path, cert_pem(cert), mode=0o644)


def _load_pair(cert_path: str, key_path: str):
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return cert, key


def _cert_names(cert: x509.Certificate) -> List[str]:
    x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID = _crypto()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + \
        [str(v) for v in san.get_values_for_type(x509.IPAddress)]


class CertReport(NamedTuple):
    made: List[str]         # one line per file pair written
    kept: List[str]         # one line per pair already there and kept


def make_certificates(tls_dir: str, clients: Iterable[str] = (),
                      hosts: Iterable[str] = ()) -> CertReport:
    """Create what is missing in ``tls_dir``: the CA (never replaced), the server
    certificate (re-issued, same key, when a host name it lacks is asked for), and one
    certificate per client name (existing ones kept)."""
    layout = TlsDir(tls_dir)
    clients = [check_client_name(c) for c in clients]
    names = host_names(hosts)
    made: List[str] = []
    kept: List[str] = []
    for directory in (layout.path, layout.clients_dir):
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700)
    have_ca = os.path.exists(layout.ca_cert) or os.path.exists(layout.ca_key)
    if have_ca:
        try:
            ca_cert, ca_key = _load_pair(layout.ca_cert, layout.ca_key)
        except (OSError, ValueError) as e:
            raise TlsError("%s holds an unusable CA (%s); nepi never replaces a CA: move it "
                           "away or choose another --tls-dir" % (layout.path, e)) from None
        kept.append("CA %s" % layout.ca_cert)
    else:
        ca_cert, ca_key = _make_ca()
        _write_pair(layout.ca_cert, layout.ca_key, ca_cert, ca_key)
        made.append("CA %s (its key %s signs every certificate: keep it private)"
                    % (layout.ca_cert, layout.ca_key))
    server_key, missing = None, names
    if os.path.exists(layout.server_cert) and os.path.exists(layout.server_key):
        server_cert, server_key = _load_pair(layout.server_cert, layout.server_key)
        present = _cert_names(server_cert)
        missing = [name for name in names if name not in present]
        if missing:
            names = present + missing
        else:
            kept.append("server certificate %s (%s)" % (layout.server_cert,
                                                        ", ".join(present)))
    if missing:
        cert, key = issue(ca_cert, ca_key, names[0], "server", names, key=server_key)
        _write_pair(layout.server_cert, layout.server_key, cert, key)
        made.append("server certificate %s for %s" % (layout.server_cert, ", ".join(names)))
    for name in clients:
        cert_path, key_path = layout.client_cert(name), layout.client_key(name)
        if os.path.exists(cert_path) and os.path.exists(key_path):
            kept.append("client %s: %s" % (name, cert_path))
            continue
        cert, key = issue(ca_cert, ca_key, name, "client")
        _write_pair(cert_path, key_path, cert, key)
        made.append("client %s: %s and %s" % (name, cert_path, key_path))
    return CertReport(made, kept)


# ---- contexts ---------------------------------------------------------------------------

def _require(path: str, what: str) -> str:
    if not path or not os.path.isfile(path):
        raise TlsError("%s %s not found%s" % (what, path or "(not given)",
                                              " (make it with `nepid certs`)"))
    return path


def server_context(tls_dir: str) -> ssl.SSLContext:
    """TLS >= 1.2, our server certificate, client certificates required and checked
    against the directory's CA only."""
    layout = TlsDir(tls_dir)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(_require(layout.server_cert, "server certificate"),
                                _require(layout.server_key, "server key"))
        context.load_verify_locations(cafile=_require(layout.ca_cert, "CA certificate"))
    except ssl.SSLError as e:
        raise TlsError("cannot use the certificates in %s: %s" % (layout.path, e)) from None
    return context


def client_context(ca: str, cert: str, key: str) -> ssl.SSLContext:
    """TLS >= 1.2; the server must hold a certificate of ``ca`` for the host name used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=_require(ca, "CA certificate"))
        context.load_cert_chain(_require(cert, "client certificate"),
                                _require(key, "client key"))
    except ssl.SSLError as e:
        raise TlsError("cannot use the client certificate %s: %s" % (cert, e)) from None
    return context


def client_files(tls_dir: str, name: Optional[str] = None) -> ClientFiles:
    """The CA and one client's pair in a ``nepid certs`` directory; without ``name``, the
    only client there."""
    layout = TlsDir(tls_dir)
    if name is None:
        names = layout.client_names()
        if len(names) != 1:
            raise TlsError("%s has %s: name one with --client" % (
                layout.clients_dir, "client certificates for %s" % ", ".join(names)
                if names else "no client certificate (`nepid certs --client NAME`)"))
        name = names[0]
    return ClientFiles(layout.ca_cert, layout.client_cert(name), layout.client_key(name))


def peer_name(sock: ssl.SSLSocket) -> str:
    """The common name of a verified TLS peer (empty certificate: not verified)."""
    cert = sock.getpeercert()
    if not cert:
        raise ssl.SSLError("no verified client certificate")
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return "?"


# ---- addresses and nepid's persisted listener -------------------------------------------

def parse_address(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    host, sep, port = (text or "").rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise TlsError("bad address %r: expected HOST:PORT (or [IPv6]:PORT)" % (text,))
    return host, int(port)


def format_address(host: str, port: int) -> str:
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def save_listen(root_dir: str, address: str, tls_dir: str) -> None:
    """Remember nepid's listener in the root dir, so that a nepid restarted there (``nepid
    recover``, systemd) listens again."""
    parse_address(address)
    write_json_atomic(os.path.join(root_dir, LISTEN_FILE),
                      {"listen": address, "tls_dir": os.path.abspath(tls_dir)}, mode=0o600)


def load_listen(root_dir: str) -> Optional[dict]:
    path = os.path.join(root_dir, LISTEN_FILE)
    try:
        with open(path) as f:
            settings = json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise TlsError("%s is unreadable: %s" % (path, e)) from None
    if not isinstance(settings, dict) or not settings.get("listen") or \
            not settings.get("tls_dir"):
        raise TlsError("%s does not name a listen address and a TLS directory" % path)
    return settings


def forget_listen(root_dir: str) -> bool:
    path = os.path.join(root_dir, LISTEN_FILE)
    if os.path.exists(path):
        os.unlink(path)
        return True
    return False

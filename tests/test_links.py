"""shipway's Temporal settings against a Temporal that speaks TLS only, and one that also wants
a client certificate (mTLS): the embedded dev server behind a real TLS endpoint in front of it,
with a CA, server and client certificates made for the test."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from shipway.errors import ServiceError
from shipway.links import connect_temporal, temporal_security
from shipway.settings import Settings
from tests.servers import Servers


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: A CA that signed nothing here.
    stranger: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = issuer or (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        if usage == ExtendedKeyUsageOID.SERVER_AUTH:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")

    def write(name: str, data: bytes) -> Path:
        (root / name).write_bytes(data)
        return root / name

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("shipway test CA", ca_key, None)
    issuer = (ca.subject, ca_key)
    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    return Pki(
        ca=write("ca.pem", pem(ca)),
        server_cert=write(
            "server.pem",
            pem(
                _certificate("temporal", server_key, issuer, usage=ExtendedKeyUsageOID.SERVER_AUTH)
            ),
        ),
        server_key=write("server.key", _key_pem(server_key)),
        client_cert=write(
            "client.pem",
            pem(_certificate("shipway", client_key, issuer, usage=ExtendedKeyUsageOID.CLIENT_AUTH)),
        ),
        client_key=write("client.key", _key_pem(client_key)),
        stranger=write("stranger.pem", pem(_certificate("stranger", stranger_key, None))),
    )


@contextlib.asynccontextmanager
async def tls_endpoint(upstream: str, pki: Pki, *, mutual: bool) -> AsyncIterator[str]:
    """A TLS endpoint (HTTP/2 by ALPN, as gRPC needs) in front of the plain-text UPSTREAM;
    with MUTUAL it refuses a client without a certificate of the CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.set_alpn_protocols(["h2"])
    if mutual:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
    host, port = upstream.rsplit(":", 1)

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def settings(**env: str) -> Settings:
    return Settings.load(env={f"SHIPWAY_TEMPORAL_{k.upper()}": v for k, v in env.items()})


async def reaches(address: str, configured: Settings) -> bool:
    """Whether a client made from CONFIGURED gets a namespace's description through ADDRESS."""
    try:
        client = await connect_temporal(
            address, "default", timeout=3, **temporal_security(configured)
        )
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="default")
        )
    except ServiceError:
        return False
    return True


async def test_tls_with_the_operators_ca(servers: Servers, pki: Pki) -> None:
    async with tls_endpoint(servers.temporal_address, pki, mutual=False) as address:
        assert await reaches(address, settings(tls_ca=str(pki.ca)))
        # Plain text to a TLS endpoint, or a CA that did not sign its certificate: refused.
        assert not await reaches(address, settings())
        assert not await reaches(address, settings(tls_ca=str(pki.stranger)))
        # TLS with the system's CAs only does not trust a private CA either.
        assert not await reaches(address, settings(tls="true"))


async def test_mutual_tls_presents_the_client_certificate(servers: Servers, pki: Pki) -> None:
    async with tls_endpoint(servers.temporal_address, pki, mutual=True) as address:
        mutual = settings(
            tls_ca=str(pki.ca), tls_cert=str(pki.client_cert), tls_key=str(pki.client_key)
        )
        assert await reaches(address, mutual)
        assert not await reaches(address, settings(tls_ca=str(pki.ca)))

"""A local development certificate authority for serving HTTPS on this machine.

API keys travel in a header: over plain HTTP anyone on the path reads them.
Production puts a real certificate in front (a reverse proxy or a managed
load balancer). For the course we make our own tiny CA with `trustme`, issue a
certificate for the loopback names, and tell clients to trust that CA only.
The CA's private key never leaves the folder it is written to; delete the
folder to start over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class DevCertificates:
    """Paths to the development CA's certificate and the server's certificate and key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def ensure_dev_certificates(folder: str | Path, names: tuple[str, ...] = LOOPBACK_NAMES) -> DevCertificates:
    """Create (once) a development CA and a server certificate for `names` in `folder`."""
    base = Path(folder)
    certs = DevCertificates(base / "dev-ca.pem", base / "server.pem", base / "server-key.pem")
    if certs.ca_cert.exists() and certs.server_cert.exists() and certs.server_key.exists():
        return certs
    if not base.is_dir():  # a folder we create is ours alone; one that exists keeps the mode its owner chose
        base.mkdir(mode=0o700, parents=True)
    ca = trustme.CA(organization_name="MCP course development CA")
    issued = ca.issue_cert(*names)
    ca.cert_pem.write_to_path(str(certs.ca_cert))
    issued.cert_chain_pems[0].write_to_path(str(certs.server_cert))
    for extra in issued.cert_chain_pems[1:]:
        extra.write_to_path(str(certs.server_cert), append=True)
    issued.private_key_pem.write_to_path(str(certs.server_key))
    certs.server_key.chmod(0o600)
    return certs

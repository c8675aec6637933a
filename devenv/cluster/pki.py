"""The throwaway cluster's certificates: one CA signing every serving and client certificate.

Made with the ``openssl`` command (P-256 keys, valid for a week), once per cluster directory.
Client identities follow Kubernetes' conventions (CN = user, O = group): the kubelet is
``system:node:<node>`` in ``system:nodes`` (the Node authorizer), the control-plane components
use their built-in user names, and the admin, CoreDNS and metrics-server run on the host as
``system:masters`` to keep this single-machine cluster free of extra RBAC.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

VALID_DAYS = "7"


@dataclass(frozen=True)
class Identity:
    """A certificate to issue: its file stem, subject and (for servers) alternative names."""

    name: str
    common_name: str
    organization: str = ""
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        return bool(self.dns or self.ips)


def identities(node_name: str, node_ip: str, api_service_ip: str) -> list[Identity]:
    api_dns = (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    )
    return [
        Identity(
            "apiserver", "kube-apiserver", dns=api_dns, ips=(node_ip, api_service_ip, "127.0.0.1")
        ),
        Identity(
            "kubelet-serving",
            f"system:node:{node_name}",
            "system:nodes",
            dns=(node_name,),
            ips=(node_ip,),
        ),
        Identity(
            "metrics-server-serving",
            "metrics-server",
            dns=("metrics-server.kube-system.svc",),
            ips=(node_ip,),
        ),
        Identity("admin", "cluster-admin", "system:masters"),
        Identity("controller-manager", "system:kube-controller-manager"),
        Identity("scheduler", "system:kube-scheduler"),
        Identity("kube-proxy", "system:kube-proxy"),
        Identity("kubelet", f"system:node:{node_name}", "system:nodes"),
        Identity("apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"),
        Identity("front-proxy-client", "front-proxy-client"),
        Identity("coredns", "coredns", "system:masters"),
        Identity("metrics-server", "metrics-server", "system:masters"),
    ]


def ensure_pki(directory: Path, wanted: list[Identity]) -> None:
    """Create the CA, the service-account key pair and each missing certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "ca.crt").exists():
        _key(directory / "ca.key")
        _openssl(
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=post-service-test-ca",
            "-days",
            VALID_DAYS,
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )
    if not (directory / "sa.pub").exists():
        _key(directory / "sa.key")
        _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    for identity in wanted:
        if not (directory / f"{identity.name}.crt").exists():
            _issue(directory, identity)


def _issue(directory: Path, identity: Identity) -> None:
    _key(directory / f"{identity.name}.key")
    subject = f"/CN={identity.common_name}"
    if identity.organization:
        subject = f"/O={identity.organization}{subject}"
    extensions = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
    ]
    if identity.serving:
        names = [f"DNS:{d}" for d in identity.dns] + [f"IP:{i}" for i in identity.ips]
        extensions += ["extendedKeyUsage=serverAuth", "subjectAltName=" + ",".join(names)]
    else:
        extensions.append("extendedKeyUsage=clientAuth")
    ext_file = directory / f"{identity.name}.ext"
    ext_file.write_text("\n".join(extensions) + "\n")
    _openssl(
        "req",
        "-new",
        "-key",
        f"{identity.name}.key",
        "-subj",
        subject,
        "-out",
        f"{identity.name}.csr",
        cwd=directory,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{identity.name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        VALID_DAYS,
        "-extfile",
        ext_file.name,
        "-out",
        f"{identity.name}.crt",
        cwd=directory,
    )


def _key(path: Path) -> None:
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path.name,
        cwd=path.parent,
    )
    path.chmod(0o600)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)

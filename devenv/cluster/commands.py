"""The command line of each daemon of the cluster (every listener on the node address)."""

from __future__ import annotations

from pathlib import Path

from devenv.cluster import config
from devenv.cluster.config import NODE_IP, NODE_NAME, Layout


def commands(layout: Layout, binaries: dict[str, Path]) -> dict[str, list[str]]:
    """Daemon name -> argv, in start order."""
    pki = layout.pki
    etcd_url = f"http://{NODE_IP}:{config.ETCD_CLIENT_PORT}"
    peer_url = f"http://{NODE_IP}:{config.ETCD_PEER_PORT}"

    def component(name: str, identity: str, *extra: str) -> list[str]:
        kubeconfig = layout.kubeconfig(identity)
        return [
            str(binaries[name]),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            *extra,
        ]

    return {
        "containerd": ["containerd", "--config", str(layout.conf / "containerd.toml")],
        "etcd": [
            str(binaries["etcd"]),
            "--name=default",
            f"--data-dir={layout.data / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--log-level=warn",
            # A throwaway cluster on a shared disk: durability buys nothing here.
            "--unsafe-no-fsync",
        ],
        "kube-apiserver": [
            str(binaries["kube-apiserver"]),
            f"--advertise-address={NODE_IP}",
            f"--bind-address={NODE_IP}",
            f"--secure-port={config.API_PORT}",
            f"--etcd-servers={etcd_url}",
            f"--service-cluster-ip-range={config.SERVICE_CIDR}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            # The aggregation layer, for metrics-server's metrics.k8s.io.
            f"--requestheader-client-ca-file={pki / 'ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--enable-aggregator-routing=true",
            "--profiling=false",
        ],
        "kube-controller-manager": component(
            "kube-controller-manager",
            "controller-manager",
            f"--bind-address={NODE_IP}",
            "--leader-elect=false",
            "--profiling=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            "--horizontal-pod-autoscaler-sync-period=5s",
        ),
        "kube-scheduler": component(
            "kube-scheduler",
            "scheduler",
            f"--bind-address={NODE_IP}",
            "--leader-elect=false",
            "--profiling=false",
        ),
        "kubelet": [
            str(binaries["kubelet"]),
            f"--config={layout.conf / 'kubelet.yaml'}",
            f"--kubeconfig={layout.kubeconfig('kubelet')}",
            f"--root-dir={layout.data / 'kubelet'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--v=1",
        ],
        "kube-proxy": [str(binaries["kube-proxy"]), f"--config={layout.conf / 'kube-proxy.yaml'}"],
        "coredns": [str(binaries["coredns"]), "-conf", str(layout.conf / "Corefile")],
        "metrics-server": component(
            "metrics-server",
            "metrics-server",
            f"--secure-port={config.METRICS_SERVER_PORT}",
            f"--bind-address={NODE_IP}",
            f"--tls-cert-file={pki / 'metrics-server-serving.crt'}",
            f"--tls-private-key-file={pki / 'metrics-server-serving.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--metric-resolution=10s",
            "--kubelet-request-timeout=5s",
        ),
        # kube-router's network policy controller alone: no routing, service proxy or CNI.
        "kube-router": [
            str(binaries["kube-router"]),
            f"--kubeconfig={layout.kubeconfig('admin')}",
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            "--run-loadbalancer=false",
            "--enable-cni=false",
            "--enable-ipv6=false",
            f"--hostname-override={NODE_NAME}",
            f"--service-cluster-ip-range={config.SERVICE_CIDR}",
            "--health-port=0",
        ],
    }

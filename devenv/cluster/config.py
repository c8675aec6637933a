"""The throwaway cluster's configuration files: containerd, CNI, kubelet, kube-proxy, CoreDNS.

Every address is on this machine. The node and every control-plane listener use one /32 added to
``lo`` (NODE_IP): Kubernetes refuses a loopback node address, and pods must reach the node. Pods
get addresses on a bridge in POD_CIDR and routes only to CLUSTER_RANGE, so a pod cannot send
anything off the machine; CoreDNS answers the cluster's names and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path

NODE_NAME = "post-service-node"
NODE_IP = "10.250.0.1"
CLUSTER_RANGE = "10.250.0.0/16"
POD_CIDR = "10.250.1.0/24"
POD_GATEWAY = "10.250.1.1"
SERVICE_CIDR = "10.250.2.0/24"
API_SERVICE_IP = "10.250.2.1"
DNS_SERVICE_IP = "10.250.2.10"
BRIDGE = "pscluster0"
CNI_NETWORK = "post-service-pods"
API_PORT = 6443
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
METRICS_SERVER_PORT = 4443
COREDNS_READY_PORT = 8181
CNI_BIN_DIR = Path("/usr/lib/cni")
API_URL = f"https://{NODE_IP}:{API_PORT}"


class Layout:
    """Where one cluster keeps its files (everything under ``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pki = root / "pki"
        self.conf = root / "conf"
        self.data = root / "data"
        self.logs = root / "logs"
        self.pids = root / "pids"
        self.containerd_socket = root / "containerd.sock"

    def kubeconfig(self, identity: str) -> Path:
        return self.conf / f"{identity}.kubeconfig"


def kubeconfig(layout: Layout, identity: str) -> str:
    pki = layout.pki
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "post-service-test",
                    "cluster": {"server": API_URL, "certificate-authority": str(pki / "ca.crt")},
                }
            ],
            "users": [
                {
                    "name": identity,
                    "user": {
                        "client-certificate": str(pki / f"{identity}.crt"),
                        "client-key": str(pki / f"{identity}.key"),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "post-service-test",
                    "context": {"cluster": "post-service-test", "user": identity},
                }
            ],
            "current-context": "post-service-test",
        },
        indent=2,
    )


def containerd_toml(layout: Layout, sandbox_image: str) -> str:
    data = layout.data
    # Root here lacks CAP_SYS_RESOURCE, so containerd may only raise oom_score_adj
    # (restrict_oom_score_adj); cgroup v1 with the cgroupfs driver, like the kubelet.
    return f"""version = 2
root = "{data / "containerd"}"
state = "{data / "containerd-state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{data / "containerd-opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{layout.conf / "cni"}"
    max_conf_num = 1
"""


def cni_conflist(layout: Layout) -> str:
    # The firewall plugin admits the pods' traffic in FORWARD (its policy may be DROP, and
    # br_netfilter sends bridged packets through it). No masquerading and no default route:
    # pods reach the cluster's range only.
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(layout.data / "cni-ipam"),
                        "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
                        "routes": [{"dst": CLUSTER_RANGE}],
                    },
                },
                {"type": "firewall", "backend": "iptables"},
            ],
        },
        indent=2,
    )


def kubelet_yaml(layout: Layout) -> str:
    pki = layout.pki
    return json.dumps(
        {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "healthzBindAddress": NODE_IP,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(pki / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
            "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            "failSwapOn": False,
            "clusterDNS": [DNS_SERVICE_IP],
            "clusterDomain": "cluster.local",
            # An empty file: pods get no search domains or resolvers of the host.
            "resolvConf": str(layout.conf / "resolv.conf"),
            "podLogsDir": str(layout.data / "pod-logs"),
            # The host's iptables stay as they are, apart from what kube-proxy and CNI add.
            "makeIPTablesUtilChains": False,
            "serializeImagePulls": False,
            # Images are imported, never pulled: never garbage-collect them, and keep pods
            # running on a busy shared disk.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "rotateCertificates": False,
            "nodeStatusReportFrequency": "10s",
        },
        indent=2,
    )


def kube_proxy_yaml(layout: Layout) -> str:
    return json.dumps(
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(layout.kubeconfig("kube-proxy"))},
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "healthzBindAddress": f"{NODE_IP}:10256",
            "metricsBindAddress": f"{NODE_IP}:10249",
            "clusterCIDR": POD_CIDR,
            "nodePortAddresses": [f"{NODE_IP}/32"],
            # Zeroes leave the host's conntrack sysctls alone.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            "iptables": {"localhostNodePorts": False},
        },
        indent=2,
    )


def corefile(layout: Layout) -> str:
    # Only the cluster's zones; every other name is refused (no forwarding off the machine).
    return f""".:53 {{
    bind {NODE_IP}
    errors
    ready {NODE_IP}:{COREDNS_READY_PORT}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {layout.kubeconfig("coredns")}
        pods insecure
    }}
    cache 5
}}
"""


def bootstrap_objects(ca_bundle_b64: str) -> str:
    """kube-dns and metrics-server: Services whose endpoints are the host processes."""
    objects: list[dict[str, object]] = []
    for name, labels, ip, ports, target_ports in (
        (
            "kube-dns",
            {"k8s-app": "kube-dns"},
            DNS_SERVICE_IP,
            [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")],
            {"dns": 53, "dns-tcp": 53},
        ),
        (
            "metrics-server",
            {"k8s-app": "metrics-server"},
            None,
            [("https", 443, "TCP")],
            {"https": METRICS_SERVER_PORT},
        ),
    ):
        spec: dict[str, object] = {
            "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]
        }
        if ip:
            spec["clusterIP"] = ip
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                "spec": spec,
            }
        )
        # A v1 Endpoints object (deprecated, still served): the API server's aggregator and the
        # EndpointSlice mirroring controller (which kube-proxy then follows) both read it.
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
                "subsets": [
                    {
                        "addresses": [{"ip": NODE_IP}],
                        "ports": [
                            {"name": n, "port": target_ports[n], "protocol": proto}
                            for n, _, proto in ports
                        ],
                    }
                ],
            }
        )
    objects.append(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "caBundle": ca_bundle_b64,
                "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443},
            },
        }
    )
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2)


def host_volumes(directory: Path, count: int = 3) -> str:
    """PersistentVolumes on host directories, the cluster's storage (kind has a provisioner).

    They have no StorageClass, and the cluster has no default class, so a claim that names no
    class (like deploy/dev/postgres.yaml's) binds to one of them.
    """
    volumes = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"host-volume-{number}"},
            "spec": {
                "capacity": {"storage": "2Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(directory / str(number)), "type": "DirectoryOrCreate"},
            },
        }
        for number in range(count)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": volumes}, indent=2)

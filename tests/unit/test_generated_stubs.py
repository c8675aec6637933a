"""The committed gRPC stubs are exactly what proto/ generates (run `make protos` if not), and
proto/ keeps the wire contracts the platform has deployed (golden copies in tests/contract/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from scripts.generate_protos import GENERATED_PACKAGE, generate

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = {
        p.relative_to(tmp_path): p.read_bytes()
        for p in (tmp_path / GENERATED_PACKAGE).rglob("*.py*")
    }
    committed_dir = ROOT / "src" / GENERATED_PACKAGE
    committed = {
        p.relative_to(ROOT / "src"): p.read_bytes()
        for p in committed_dir.rglob("*.py*")
        if "__pycache__" not in p.parts
    }
    assert sorted(fresh) == sorted(committed)
    stale = [str(path) for path, content in fresh.items() if committed[path] != content]
    assert stale == [], f"stale stubs, run `make protos`: {stale}"


# Byte-for-byte copies of the contracts as deployed (the gateway's post.proto, User-service's
# user_post.proto), kept in the repository so that any clone can check itself against them.
DEPLOYED_CONTRACTS = ROOT / "tests" / "contract" / "deployed"


def wire_shape(proto_root: Path, proto: str, tmp_path: Path) -> dict[str, object]:
    """Package, messages (field name -> number, type, label) and methods of a compiled proto."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / (proto.replace("/", "_") + ".pb")
    assert protoc.main(["protoc", f"-I{proto_root}", f"--descriptor_set_out={out}", proto]) == 0
    (compiled,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return {
        "package": compiled.package,
        "messages": {
            message.name: {f.name: (f.number, f.type, f.label, f.type_name) for f in message.field}
            for message in compiled.message_type
        },
        "services": {
            service.name: {m.name: (m.input_type, m.output_type) for m in service.method}
            for service in compiled.service
        },
    }


@pytest.mark.parametrize("proto", ["post/post.proto", "user_post/user_post.proto"])
def test_our_protos_keep_the_deployed_wire_contracts(proto: str, tmp_path: Path) -> None:
    deployed = wire_shape(DEPLOYED_CONTRACTS, proto, tmp_path / "deployed")
    ours = wire_shape(ROOT / "proto", proto, tmp_path / "ours")
    assert ours == deployed


def test_a_renumbered_field_breaks_the_deployed_wire_contract(tmp_path: Path) -> None:
    changed = tmp_path / "changed" / "post" / "post.proto"
    changed.parent.mkdir(parents=True)
    source = (ROOT / "proto" / "post" / "post.proto").read_text()
    changed.write_text(source.replace("int32 post_id = 1;", "int32 post_id = 5;", 1))
    deployed = wire_shape(DEPLOYED_CONTRACTS, "post/post.proto", tmp_path / "deployed")
    assert wire_shape(tmp_path / "changed", "post/post.proto", tmp_path / "ours") != deployed

"""Adding post.v2 leaves v1's wire contract byte for byte as deployed."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from post_service._generated.post import post_pb2 as v1
from post_service._generated.post.v2 import post_pb2 as v2

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED = ROOT / "tests" / "contract" / "deployed"


def compiled(proto_root: Path, proto: str, out: Path) -> bytes:
    assert protoc.main(["protoc", f"-I{proto_root}", f"--descriptor_set_out={out}", proto]) == 0
    (descriptor,) = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    for message in descriptor.message_type:
        for field in message.field:
            field.ClearField("json_name")  # derived from the name; generated code leaves it out
    return bytes(descriptor.SerializeToString())


def test_the_served_v1_descriptor_is_byte_for_byte_the_deployed_one(tmp_path: Path) -> None:
    deployed = compiled(DEPLOYED, "post/post.proto", tmp_path / "deployed.pb")
    # What the server registers and reflection hands out for post.Post, generated from proto/.
    served = descriptor_pb2.FileDescriptorProto.FromString(v1.DESCRIPTOR.serialized_pb)
    assert served.name == "post_service/_generated/post/post.proto"  # make protos' import path
    served.name = "post/post.proto"
    assert bytes(served.SerializeToString()) == deployed


def test_v2_is_a_separate_package_that_v1_does_not_import() -> None:
    assert (v1.DESCRIPTOR.package, v2.DESCRIPTOR.package) == ("post", "post.v2")
    assert list(v1.DESCRIPTOR.dependencies) == []
    assert "post/post.proto" not in [d.name for d in v2.DESCRIPTOR.dependencies]
    assert list(v1.DESCRIPTOR.services_by_name) == ["Post"]

"""SageMaker's `aialgs.data.Record` (record.proto of the SageMaker Python SDK, Apache-2.0:
Float32Tensor, Value, Record) built with the protobuf library's own descriptors, so that the
tests encode records with protobuf itself rather than with the decoder's own idea of the
format; and the SDK's RecordIO framing."""
from __future__ import annotations

import struct

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf import message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _messages():
    f = descriptor_pb2.FileDescriptorProto(name="basalt_test_record.proto", package="aialgs.data",
                                           syntax="proto2")
    t = f.message_type.add(name="Float32Tensor")
    for name, number, kind in (("values", 1, _F.TYPE_FLOAT), ("keys", 2, _F.TYPE_UINT64),
                               ("shape", 3, _F.TYPE_UINT64)):
        field = t.field.add(name=name, number=number, type=kind, label=_F.LABEL_REPEATED)
        field.options.packed = True
    v = f.message_type.add(name="Value")
    v.oneof_decl.add(name="value")
    v.field.add(name="float32_tensor", number=2, type=_F.TYPE_MESSAGE, label=_F.LABEL_OPTIONAL,
                type_name=".aialgs.data.Float32Tensor", oneof_index=0)
    r = f.message_type.add(name="Record")
    for name, number in (("features", 1), ("label", 2)):
        entry = r.nested_type.add(name=name.capitalize() + "Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=_F.TYPE_MESSAGE, label=_F.LABEL_OPTIONAL,
                        type_name=".aialgs.data.Value")
        r.field.add(name=name, number=number, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                    type_name=f".aialgs.data.Record.{entry.name}")
    r.field.add(name="uid", number=3, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("aialgs.data.Record"))


Record = _messages()


def record(values, label, keys=None, shape=None, uid=None) -> bytes:
    r = Record()
    tensor = r.features["values"].float32_tensor
    tensor.values.extend(values)
    if keys is not None:
        tensor.keys.extend(keys)
        tensor.shape.extend(shape)
    r.label["values"].float32_tensor.values.append(label)
    if uid:
        r.uid = uid
    return r.SerializeToString()


def recordio(records) -> bytes:
    """The SDK's `_write_recordio`: magic, length, the record, zeros to a multiple of 4 (its
    records never hold the magic number at an aligned offset, so they are never cut)."""
    out = b""
    for rec in records:
        out += struct.pack("<II", 0xCED7230A, len(rec)) + rec + b"\0" * ((4 - len(rec) % 4) % 4)
    return out

"""The ``shop.Order`` Protobuf message, as protoc would generate it from

    syntax = "proto3";
    package shop;
    message Order { string id = 1; string user = 2; int64 amount = 3; }

built here from its descriptor so that no protoc is needed. ``order_class(note=True)`` builds
the next version of the message (a field ``string note = 4`` added) in a pool of its own, as
a newer application would have it.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELDS = [("id", "TYPE_STRING"), ("user", "TYPE_STRING"), ("amount", "TYPE_INT64")]


def order_class(note=False, pool=None):
    """The generated class of shop.Order (with the ``note`` field of version 2 if asked)."""
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="shop/order.proto", package="shop",
                                             syntax="proto3")
    msg = fdp.message_type.add(name="Order")
    for number, (name, kind) in enumerate(_FIELDS + ([("note", "TYPE_STRING")] if note else []),
                                          start=1):
        msg.field.add(name=name, number=number, type=getattr(F, kind),
                      label=F.LABEL_OPTIONAL, json_name=name)
    if pool is None:
        pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))


Order = order_class(pool=descriptor_pool.Default())

"""A consumer group's committed offsets and the ends of its partitions, through the system's
librdkafka (ctypes, as kafka/topics.py does): a consumer handle with the group's id that never
subscribes, so it asks the group coordinator without joining or disturbing the group."""
import ctypes
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "kafka"))

import topics  # noqa: E402 - kafka/topics.py, after the path above

CONSUMER = 1
DESTROY_NO_CONSUMER_CLOSE = 0x8


class TopicPartition(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char_p), ("partition", ctypes.c_int32),
                ("offset", ctypes.c_int64), ("metadata", ctypes.c_void_p),
                ("metadata_size", ctypes.c_size_t), ("opaque", ctypes.c_void_p),
                ("err", ctypes.c_int), ("_private", ctypes.c_void_p)]


class TopicPartitionList(ctypes.Structure):
    _fields_ = [("cnt", ctypes.c_int), ("size", ctypes.c_int),
                ("elems", ctypes.POINTER(TopicPartition))]


def _lib():
    lib = topics.load()
    P, N = ctypes.c_void_p, ctypes.c_int
    LIST = ctypes.POINTER(TopicPartitionList)
    I64 = ctypes.POINTER(ctypes.c_int64)
    for name, args, res in (
            ("rd_kafka_topic_partition_list_new", [N], LIST),
            ("rd_kafka_topic_partition_list_add", [LIST, ctypes.c_char_p, ctypes.c_int32],
             ctypes.POINTER(TopicPartition)),
            ("rd_kafka_topic_partition_list_destroy", [LIST], None),
            ("rd_kafka_committed", [P, LIST, N], N),
            ("rd_kafka_query_watermark_offsets",
             [P, ctypes.c_char_p, ctypes.c_int32, I64, I64, N], N),
            ("rd_kafka_destroy_flags", [P, N], None)):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


def lag(bootstrap, group, partitions, timeout_ms=5000):
    """{(topic, partition): messages after the group's committed offset} for partitions, an
    iterable of (topic, partition); a partition the group never committed counts from 0."""
    lib = _lib()
    err = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    for key, val in (("bootstrap.servers", bootstrap), ("group.id", group),
                     ("client.id", "scaleout-offsets"), ("enable.auto.commit", "false")):
        if lib.rd_kafka_conf_set(conf, key.encode(), val.encode(), err, len(err)) != 0:
            raise RuntimeError(f"{key}: {err.value.decode()}")
    rk = lib.rd_kafka_new(CONSUMER, conf, err, len(err))
    if not rk:
        raise RuntimeError(f"rd_kafka_new: {err.value.decode()}")
    wanted = lib.rd_kafka_topic_partition_list_new(8)
    try:
        for topic, p in partitions:
            lib.rd_kafka_topic_partition_list_add(wanted, topic.encode(), p)
        code = lib.rd_kafka_committed(rk, wanted, timeout_ms)
        if code != 0:
            raise RuntimeError(f"rd_kafka_committed: {lib.rd_kafka_err2name(code).decode()}")
        out = {}
        for i in range(wanted.contents.cnt):
            tp = wanted.contents.elems[i]
            low, high = ctypes.c_int64(), ctypes.c_int64()
            code = lib.rd_kafka_query_watermark_offsets(rk, tp.topic, tp.partition,
                                                        ctypes.byref(low), ctypes.byref(high),
                                                        timeout_ms)
            if code != 0:
                raise RuntimeError(f"watermarks: {lib.rd_kafka_err2name(code).decode()}")
            committed = max(tp.offset, 0)   # -1001: nothing committed yet
            out[(tp.topic.decode(), tp.partition)] = high.value - committed
        return out
    finally:
        lib.rd_kafka_topic_partition_list_destroy(wanted)
        lib.rd_kafka_destroy_flags(rk, DESTROY_NO_CONSUMER_CLOSE)

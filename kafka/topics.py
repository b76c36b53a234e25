#!/usr/bin/python3
"""Wait for a Kafka broker, create topics idempotently, wait until they are usable.

Usage: kafka/topics.py BOOTSTRAP TIMEOUT_S [--pid PID] NAME:PARTITIONS...

Talks to the broker through the system's librdkafka (ctypes, nothing to compile, no Python
package): one process does what would otherwise take one JVM launch per topic. Exits 0 once every
topic is in the cluster metadata with a leader for each partition; 1 on timeout (last error on
stderr); 2 when the broker process PID (if given) died meanwhile. Existing topics are left as
they are, whatever their partition count (a note on stderr names those with another count: adding
partitions would send a key's later messages to another partition than its earlier ones).
"""
import ctypes
import ctypes.util
import os
import socket
import sys
import time

ERR_TOPIC_ALREADY_EXISTS = 36
ADMIN_OP_CREATETOPICS = 1
EVENT_CREATETOPICS_RESULT = 100


class Partition(ctypes.Structure):
    _fields_ = [("id", ctypes.c_int32), ("err", ctypes.c_int), ("leader", ctypes.c_int32),
                ("replica_cnt", ctypes.c_int), ("replicas", ctypes.POINTER(ctypes.c_int32)),
                ("isr_cnt", ctypes.c_int), ("isrs", ctypes.POINTER(ctypes.c_int32))]


class Topic(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char_p), ("partition_cnt", ctypes.c_int),
                ("partitions", ctypes.POINTER(Partition)), ("err", ctypes.c_int)]


class Metadata(ctypes.Structure):
    _fields_ = [("broker_cnt", ctypes.c_int), ("brokers", ctypes.c_void_p),
                ("topic_cnt", ctypes.c_int), ("topics", ctypes.POINTER(Topic)),
                ("orig_broker_id", ctypes.c_int32), ("orig_broker_name", ctypes.c_char_p)]


def load():
    path = ctypes.util.find_library("rdkafka") or "librdkafka.so.1"
    lib = ctypes.CDLL(path)
    # Pointer, number (int), string, size.
    P, N, S, Z = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t
    sigs = {
        "rd_kafka_conf_new": ([], P),
        "rd_kafka_conf_set": ([P, S, S, S, Z], N),
        "rd_kafka_new": ([N, P, S, Z], P),
        "rd_kafka_destroy": ([P], None),
        "rd_kafka_metadata": ([P, N, P, ctypes.POINTER(ctypes.POINTER(Metadata)), N], N),
        "rd_kafka_metadata_destroy": ([ctypes.POINTER(Metadata)], None),
        "rd_kafka_err2name": ([N], S),
        "rd_kafka_err2str": ([N], S),
        "rd_kafka_NewTopic_new": ([S, N, N, S, Z], P),
        "rd_kafka_NewTopic_destroy": ([P], None),
        "rd_kafka_AdminOptions_new": ([P, N], P),
        "rd_kafka_AdminOptions_set_operation_timeout": ([P, N, S, Z], N),
        "rd_kafka_AdminOptions_set_request_timeout": ([P, N, S, Z], N),
        "rd_kafka_AdminOptions_destroy": ([P], None),
        "rd_kafka_queue_new": ([P], P),
        "rd_kafka_queue_destroy": ([P], None),
        "rd_kafka_queue_poll": ([P, N], P),
        "rd_kafka_CreateTopics": ([P, ctypes.POINTER(P), Z, P, P], None),
        "rd_kafka_event_type": ([P], N),
        "rd_kafka_event_error": ([P], N),
        "rd_kafka_event_error_string": ([P], S),
        "rd_kafka_event_destroy": ([P], None),
        "rd_kafka_event_CreateTopics_result": ([P], P),
        "rd_kafka_CreateTopics_result_topics": ([P, ctypes.POINTER(Z)], ctypes.POINTER(P)),
        "rd_kafka_topic_result_name": ([P], S),
        "rd_kafka_topic_result_error": ([P], N),
        "rd_kafka_topic_result_error_string": ([P], S),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, res
    return lib


class Admin:
    def __init__(self, bootstrap):
        self.lib = lib = load()
        err = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        for key, val in {
            "bootstrap.servers": bootstrap,
            "client.id": "kafka.sh-topics",
            "log_level": "0",  # connection errors while the broker starts are expected
            "reconnect.backoff.ms": "50",
            "reconnect.backoff.max.ms": "250",
            "socket.connection.setup.timeout.ms": "2000",
        }.items():
            if lib.rd_kafka_conf_set(conf, key.encode(), val.encode(), err, len(err)) != 0:
                raise SystemExit(f"topics.py: {key}: {err.value.decode()}")
        self.rk = lib.rd_kafka_new(0, conf, err, len(err))  # producer handle: admin only
        if not self.rk:
            raise SystemExit(f"topics.py: rd_kafka_new: {err.value.decode()}")

    def errname(self, code):
        return self.lib.rd_kafka_err2name(code).decode()

    def metadata(self, timeout_ms):
        """{topic: [leader per partition, -1 when unusable]} or an error string."""
        md = ctypes.POINTER(Metadata)()
        code = self.lib.rd_kafka_metadata(self.rk, 1, None, ctypes.byref(md), timeout_ms)
        if code != 0:
            return f"metadata: {self.errname(code)}"
        try:
            m = md.contents
            if m.broker_cnt < 1:
                return "metadata: no broker yet"
            out = {}
            for i in range(m.topic_cnt):
                t = m.topics[i]
                if t.err != 0:
                    continue
                out[t.topic.decode()] = [
                    t.partitions[j].leader if t.partitions[j].err == 0 else -1
                    for j in range(t.partition_cnt)]
            return out
        finally:
            self.lib.rd_kafka_metadata_destroy(md)

    def create(self, wanted, timeout_ms):
        """Create {name: partitions}; returns {name: error string} for real failures."""
        lib, err = self.lib, ctypes.create_string_buffer(512)
        arr = (ctypes.c_void_p * len(wanted))()
        for i, (name, parts) in enumerate(wanted.items()):
            arr[i] = lib.rd_kafka_NewTopic_new(name.encode(), parts, 1, err, len(err))
            if not arr[i]:
                raise SystemExit(f"topics.py: {name}: {err.value.decode()}")
        opts = lib.rd_kafka_AdminOptions_new(self.rk, ADMIN_OP_CREATETOPICS)
        lib.rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, len(err))
        lib.rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, len(err))
        q = lib.rd_kafka_queue_new(self.rk)
        failures = {}
        try:
            lib.rd_kafka_CreateTopics(self.rk, arr, len(wanted), opts, q)
            ev = lib.rd_kafka_queue_poll(q, timeout_ms + 2000)
            if not ev:
                return {n: "CreateTopics: no answer" for n in wanted}
            try:
                if lib.rd_kafka_event_error(ev) != 0:
                    msg = (lib.rd_kafka_event_error_string(ev) or b"").decode()
                    return {n: f"CreateTopics: {msg}" for n in wanted}
                res = lib.rd_kafka_event_CreateTopics_result(ev)
                cnt = ctypes.c_size_t()
                results = lib.rd_kafka_CreateTopics_result_topics(res, ctypes.byref(cnt))
                for i in range(cnt.value):
                    code = lib.rd_kafka_topic_result_error(results[i])
                    if code not in (0, ERR_TOPIC_ALREADY_EXISTS):
                        name = lib.rd_kafka_topic_result_name(results[i]).decode()
                        msg = (lib.rd_kafka_topic_result_error_string(results[i]) or b"").decode()
                        failures[name] = f"{self.errname(code)}: {msg}"
            finally:
                lib.rd_kafka_event_destroy(ev)
        finally:
            lib.rd_kafka_queue_destroy(q)
            lib.rd_kafka_AdminOptions_destroy(opts)
            for i in range(len(wanted)):
                lib.rd_kafka_NewTopic_destroy(arr[i])
        return failures

    def close(self):
        self.lib.rd_kafka_destroy(self.rk)


def alive(pid):
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists": treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main(argv):
    args, pid = [], None
    it = iter(argv)
    for a in it:
        if a == "--pid":
            pid = int(next(it))
        else:
            args.append(a)
    if len(args) < 2:
        raise SystemExit(__doc__.strip().splitlines()[2])
    bootstrap, deadline = args[0], time.monotonic() + float(args[1])
    wanted = {}
    for spec in args[2:]:
        name, _, parts = spec.rpartition(":")
        wanted[name] = int(parts)

    host, _, port = bootstrap.split(",")[0].rpartition(":")
    last = "broker not reachable"
    # Cheap TCP wait first, so that librdkafka does not start in reconnect backoff.
    while True:
        if not alive(pid):
            print(f"topics.py: broker process {pid} exited", file=sys.stderr)
            return 2
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError as e:
            last = f"connect {bootstrap}: {e.strerror or e}"
        if time.monotonic() > deadline:
            print(f"topics.py: timed out: {last}", file=sys.stderr)
            return 1
        time.sleep(0.1)

    admin = Admin(bootstrap)
    try:
        while True:
            if not alive(pid):
                print(f"topics.py: broker process {pid} exited", file=sys.stderr)
                return 2
            md = admin.metadata(2000)
            if isinstance(md, str):
                last = md
            else:
                missing = {n: p for n, p in wanted.items() if n not in md}
                unready = [n for n in wanted if n in md and (not md[n] or min(md[n]) < 0)]
                if not missing and not unready:
                    for n, parts in wanted.items():
                        if len(md[n]) != parts:
                            print(f"topics.py: note: {n} exists with {len(md[n])} partitions, not "
                                  f"{parts}; left as it is (adding partitions would move keys)",
                                  file=sys.stderr)
                    return 0
                if missing:
                    failures = admin.create(missing, 5000)
                    last = ("; ".join(f"{n}: {e}" for n, e in failures.items())
                            or "created, waiting for metadata")
                else:
                    last = "no leader yet for " + ", ".join(unready)
            if time.monotonic() > deadline:
                print(f"topics.py: timed out: {last}", file=sys.stderr)
                return 1
            time.sleep(0.1)
    finally:
        admin.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

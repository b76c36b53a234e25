"""N replicas of each service sharing one PostgreSQL cluster and one broker, behind one gateway.

Replica k of a service is a harness.Service like the integration suite's (the same environment
as harness.Stack gives its first one, its own port and log `<service>-<k>.log`).  Every replica
runs with DRAIN_DELAY_MS above the gateway's upstream keepalive_timeout (4 s, gateway.conf), as
the chart's preStop delay is: the graceful scale-in test relies on it.
"""
import signal
import time

import requests

from harness import Stack, operator_token, service_ready, wait_until

DRAIN_DELAY_MS = 4500
SERVICES = ("user", "room", "reservation")


class Cluster:
    def __init__(self, replicas=3):
        self.n = replicas
        self.stack = Stack()
        self.replicas = {name: [] for name in SERVICES}

    def _new(self, name, k):
        make = {"user": self.stack.user_service, "room": self.stack.room_service,
                "reservation": self.stack.reservation_service}[name]
        return make(tag=f"{name}-service-{k}", DRAIN_DELAY_MS=str(DRAIN_DELAY_MS))

    def start(self):
        s = self.stack
        s.pg.start()
        s.oidc.start()
        s.kafka.start()
        for name in SERVICES:
            self.replicas[name] = [self._new(name, k) for k in range(1, self.n + 1)]
        # The first of each applies the migrations; the others wait for its lock.
        for svc in self.all():
            svc.start(wait_ready=False)
        for svc in self.all():
            wait_until(lambda svc=svc: self._ready(svc), timeout=60, interval=0.1,
                       what=f"{svc.log_path} ready")
        s.user, s.room, s.reservation = (self.replicas[n][0] for n in SERVICES)
        s.gateway.start(*(",".join(str(r.port) for r in self.replicas[n]) for n in SERVICES))
        self.url = s.gateway.url
        return self

    @staticmethod
    def _ready(svc):
        if svc.proc.poll() is not None:
            raise AssertionError(f"{svc.log_path}: exit {svc.proc.returncode}\n"
                                 + svc.log_tail())
        return service_ready(svc)

    def all(self):
        return [svc for name in SERVICES for svc in self.replicas[name]]

    def token(self, email, role=None):
        """(bearer headers, user id) of a user made by `user-service token`."""
        token, uid = operator_token(self.replicas["user"][0], email, role=role)
        return {"Authorization": f"Bearer {token}"}, uid

    def restart(self, svc):
        svc.start(wait_ready=False)
        return svc

    def wait_ready(self, svcs, timeout=60):
        for svc in svcs:
            wait_until(lambda svc=svc: self._ready(svc), timeout=timeout, interval=0.05,
                       what=f"{svc.log_path} ready")

    def stop(self):
        """Stops every replica at once: SIGTERM, then a second one that ends the drain delay."""
        live = [svc for svc in self.all() if svc.proc and svc.proc.poll() is None]
        for svc in live:
            svc.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        for svc in live:
            if svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGTERM)
        for svc in live:
            svc.stop()
        self.stack.services = []  # stopped above; Stack.stop stops the rest
        self.stack.stop()

    def sanitizer_reports(self):
        return {svc.log_path: r for svc in self.all() if (r := svc.sanitizer_reports())}


def metric(svc, name):
    """A gauge or counter of svc's /metrics (None when the process does not answer)."""
    import re
    try:
        text = requests.get(f"{svc.url}/metrics", timeout=2).text
    except requests.RequestException:
        return None
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else None

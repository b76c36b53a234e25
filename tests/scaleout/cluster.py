"""N replicas of each service sharing one PostgreSQL cluster and one broker, behind one gateway
(harness.Replicas).

Every replica runs with DRAIN_DELAY_MS above the gateway's upstream keepalive_timeout (4 s,
gateway.conf), as the chart's preStop delay is: a draining replica answers `Connection: close`,
so by the end of the delay the gateway holds no idle connection to it (test_scale_in_*).
"""
import re
import signal
import time

import requests

from harness import Replicas, Stack, operator_token

DRAIN_DELAY_MS = "4500"
SERVICES = ("user", "room", "reservation")


class Cluster:
    def __init__(self, replicas=3):
        self.n = replicas
        self.stack = Stack()
        self.set = None
        self.replicas = {}
        self.url = None

    def start(self):
        s = self.stack
        s.pg.start()
        s.oidc.start()
        s.kafka.start()
        # As Stack.start, with the drain delay, which Replicas copies to the others.
        s.user = s.user_service(DRAIN_DELAY_MS=DRAIN_DELAY_MS)
        s.room = s.room_service(DRAIN_DELAY_MS=DRAIN_DELAY_MS)
        s.reservation = s.reservation_service(DRAIN_DELAY_MS=DRAIN_DELAY_MS)
        for svc in (s.user, s.room, s.reservation):
            svc.start()
        self.set = Replicas(s, self.n).start()
        self.replicas = {name: self.set.of(f"{name}-service") for name in SERVICES}
        self.url = self.set.gateway.url
        return self

    def all(self):
        return self.set.all() if self.set else list(self.stack.services)

    def token(self, email, role=None):
        """(bearer headers, user id) of a user made by `user-service token`."""
        token, uid = operator_token(self.stack.user, email, role=role)
        return {"Authorization": f"Bearer {token}"}, uid

    def restart(self, svcs):
        """Starts stopped replicas again (same port, same log), waits until they are ready, and
        puts those scaled in back into the gateway (harness.Replicas.restart)."""
        self.set.restart(svcs)

    def stop(self):
        """Stops every replica at once: SIGTERM, then a second one that ends the drain delay
        (one after another, each replica would wait out its own)."""
        live = [svc for svc in self.all() if svc.proc and svc.proc.poll() is None]
        for svc in live:
            svc.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        for svc in live:
            if svc.proc.poll() is None:
                svc.proc.send_signal(signal.SIGTERM)
        if self.set:
            self.set.stop()
        self.stack.stop()

    def sanitizer_reports(self):
        return {svc.log_path: r for svc in self.stack.services if (r := svc.sanitizer_reports())}


def metric(svc, name):
    """A gauge or counter of svc's /metrics (None when the process does not answer)."""
    try:
        text = requests.get(f"{svc.url}/metrics", timeout=2).text
    except requests.RequestException:
        return None
    m = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else None

"""The scale-out tier's stack: three replicas of every service behind one gateway, on a private
PostgreSQL, broker and identity provider (tests/integration/harness.py starts each part)."""
import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path[:0] = [os.path.join(HERE, "..", "integration"), os.path.join(HERE, "..", "soak")]

from cluster import Cluster  # noqa: E402 - after the path above


@pytest.fixture(scope="session")
def cluster():
    c = Cluster(replicas=3)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        bad = c.sanitizer_reports()
        if not bad:
            c.stack.cleanup()
        else:
            print(f"sanitizer reports in {bad}; logs kept in {c.stack.workdir}")
    assert not bad, f"sanitizer reports: {bad}"

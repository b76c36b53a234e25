#!/usr/bin/env bash
# Print one free TCP port for a listener the harness starts.
# Usage: scripts/freeport.sh
#
# The port comes from 20000-32767, below the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default): a port the kernel handed out
# for bind(0) is the same kind it hands to outgoing connections, so between this script and the
# server's bind() a client's connect() (to PostgreSQL, Kafka, …) could take it ("Address already
# in use" at start). Candidates are checked on 0.0.0.0, where the services listen.
set -euo pipefail

exec /usr/bin/python3 -c '
import random, socket, sys
low = 20000
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        high = min(int(f.read().split()[0]), 32768)
except (OSError, ValueError, IndexError):
    high = 32768
if high - low < 1000:
    low, high = 10000, high
for _ in range(200):
    port = random.randrange(low, high)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
sys.exit("freeport: no free port found")
'

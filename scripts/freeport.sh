#!/usr/bin/env bash
# Print one free TCP port on 127.0.0.1.
# Usage: scripts/freeport.sh
set -euo pipefail

exec /usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
'

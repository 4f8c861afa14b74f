#!/bin/sh
# Copied to every host by the linux testbed (Application "sources") and made executable by
# its "build" step; prints where it runs, then pings the host named on stdin.
read -r next
echo "on $(hostname) as $(id -un), addresses: $(hostname -I 2>/dev/null || echo '?')"
if [ -n "$next" ]; then
    ping -n -c 3 -i 0.2 -W 2 "$next" | tail -n 2
fi

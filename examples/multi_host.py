#!/usr/bin/env python3
"""One experiment across several hosts: the linux testbed on every host of HOSTS_FILE, and
network namespaces on the first two hosts joined by an encrypted TunChannel.

- linux testbed: each host is a Node; an Application there gets examples/multi_host/ as
  its sources, a build step (chmod), the next host's address on stdin, and runs
  probe.sh (where am I, ping the next host). Its stdout and buildlog come back as traces.
- netns: a testbed daemon is launched over SSH on each of the first two hosts, with a
  node and a TAP interface (10.77.0.1/24 and 10.77.0.2/24); TunChannels join the TAPs
  over TCP between the two hosts' own addresses (AES-GCM with a per-link key); the
  first node pings the second.

HOSTS_FILE lists one ``user@address[:port]`` per line (``make hosts-up N=3`` writes one for
simulated hosts, with a key and a known_hosts file beside it). Hosts need the same Python
with nepi at the same path as here for the netns part (--remote-python,
--remote-pythonpath), and root for namespaces.

    sudo python examples/multi_host.py /run/nepi-hosts/hosts \\
        [--key /run/nepi-hosts/id_ed25519] [--known-hosts /run/nepi-hosts/known_hosts] \\
        [--root-dir run-output/multi-host]
"""

import argparse
import os
import sys
import time
from typing import List, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from nepi.core.design import ExperimentDescription, FactoriesProvider  # noqa: E402
from nepi.util.constants import DeploymentConfiguration as DC  # noqa: E402
from nepi.util.proxy import AccessConfiguration, create_experiment_controller  # noqa: E402


class Host(NamedTuple):
    user: str
    address: str
    port: int


def read_hosts(path: str) -> List[Host]:
    hosts = []
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, _, rest = line.rpartition("@")
        address, _, port = rest.partition(":")
        if not user or not address:
            raise SystemExit("%s line %d: expected user@address[:port], got %r"
                             % (path, number, line))
        hosts.append(Host(user, address, int(port or 22)))
    if not hosts:
        raise SystemExit("%s lists no host" % path)
    return hosts


def add_linux_part(exp, hosts, args):
    linux = exp.add_testbed_description(FactoriesProvider("linux"))
    if args.key:
        linux.set_attribute_value("sshKey", args.key)
    if args.known_hosts:
        linux.set_attribute_value("sshKnownHosts", args.known_hosts)
    apps = []
    for i, host in enumerate(hosts):
        node = linux.create("Node")
        node.set_attribute_value("hostname", host.address)
        node.set_attribute_value("sshUser", host.user)
        node.set_attribute_value("sshPort", host.port)
        node.set_attribute_value("label", "host%d" % (i + 1))
        app = linux.create("Application")
        app.set_attribute_value("label", "probe%d" % (i + 1))
        app.set_attribute_value("sources", os.path.join(HERE, "multi_host"))
        app.set_attribute_value("build", "chmod +x multi_host/probe.sh")
        app.set_attribute_value("command", "./multi_host/probe.sh")
        app.set_attribute_value("stdin", hosts[(i + 1) % len(hosts)].address + "\n")
        app.enable_trace("stdout")
        app.enable_trace("buildlog")
        app.connector("node").connect(node.connector("apps"))
        apps.append(app)
    return apps


def add_netns_side(exp, host, args, root, address):
    netns = exp.add_testbed_description(FactoriesProvider("netns"))
    for name, value in ((DC.DEPLOYMENT_MODE, DC.MODE_DAEMON),
                        (DC.DEPLOYMENT_COMMUNICATION, DC.ACCESS_SSH),
                        (DC.DEPLOYMENT_HOST, host.address), (DC.DEPLOYMENT_USER, host.user),
                        (DC.DEPLOYMENT_PORT, host.port), (DC.ROOT_DIRECTORY, root),
                        (DC.DEPLOYMENT_KEY, args.key),
                        (DC.DEPLOYMENT_KNOWN_HOSTS, args.known_hosts),
                        (DC.DEPLOYMENT_ENVIRONMENT_SETUP,
                         "export PYTHONPATH=%s" % args.remote_pythonpath)):
        if value:
            netns.set_attribute_value(name, value)
    node = netns.create("Node")
    tap = netns.create("TapNodeInterface")
    tap.set_attribute_value("up", True)
    node.connector("devs").connect(tap.connector("node"))
    ip = tap.add_address()
    ip.set_attribute_value("Address", address)
    ip.set_attribute_value("NetPrefix", 24)
    channel = netns.create("TunChannel")
    channel.connector("->fd").connect(tap.connector("fd->"))
    return netns, node, channel


def add_netns_part(exp, hosts, args):
    a = add_netns_side(exp, hosts[0], args, os.path.join(args.root_dir, "netns-a"),
                       "10.77.0.1")
    b = add_netns_side(exp, hosts[1], args, os.path.join(args.root_dir, "netns-b"),
                       "10.77.0.2")
    a[2].connector("tcp").connect(b[2].connector("tcp"))
    ping = a[0].create("Application")
    ping.set_attribute_value("label", "ping-across")
    ping.set_attribute_value("command", "ping -n -c 5 -i 0.2 10.77.0.2")
    ping.enable_trace("stdout")
    ping.connector("node").connect(a[1].connector("apps"))
    return ping


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts_file")
    parser.add_argument("--key", help="SSH private key (default: next to HOSTS_FILE, if "
                        "there is one, else ssh's own)")
    parser.add_argument("--known-hosts", help="known_hosts file checked strictly (default: "
                        "next to HOSTS_FILE, if there is one)")
    parser.add_argument("--root-dir", default=os.path.join("run-output", "multi-host"))
    parser.add_argument("--remote-python", default=sys.executable,
                        help="Python with nepi on the hosts (default: this one's path)")
    parser.add_argument("--remote-pythonpath", default=REPO,
                        help="PYTHONPATH on the hosts (default: this checkout's path)")
    args = parser.parse_args(argv)
    folder = os.path.dirname(os.path.abspath(args.hosts_file))
    for name, default in (("key", "id_ed25519"), ("known_hosts", "known_hosts")):
        if getattr(args, name) is None and os.path.exists(os.path.join(folder, default)):
            setattr(args, name, os.path.join(folder, default))
    args.root_dir = os.path.abspath(args.root_dir)
    os.environ["NEPI_REMOTE_PYTHON"] = args.remote_python
    hosts = read_hosts(args.hosts_file)

    exp = ExperimentDescription()
    probes = add_linux_part(exp, hosts, args)
    ping = add_netns_part(exp, hosts, args) if len(hosts) >= 2 else None
    config = AccessConfiguration()
    config.set_attribute_value(DC.ROOT_DIRECTORY, args.root_dir)
    controller = create_experiment_controller(exp.to_xml(), config)
    began = time.monotonic()
    try:
        controller.start()
        print("deployed on %d hosts in %.1f s" % (len(hosts), time.monotonic() - began))
        waiting = probes + ([ping] if ping else [])
        deadline = time.monotonic() + 120
        while not all(controller.is_finished(a.guid) for a in waiting):
            if time.monotonic() > deadline:
                raise SystemExit("applications still running after 120 s")
            time.sleep(0.2)
        for app in probes:
            print("--- %s" % app.get_attribute_value("label"))
            print(controller.trace(app.guid, "stdout").rstrip())
        if ping is not None:
            print("--- ping from %s's namespace to %s's, through the TunChannel"
                  % (hosts[0].address, hosts[1].address))
            print(controller.trace(ping.guid, "stdout").rstrip())
        controller.stop()
    finally:
        controller.shutdown()
    print("traces and logs kept in %s" % args.root_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())

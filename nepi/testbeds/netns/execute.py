"""netns TestbedController: nodes are named network namespaces, links veth pairs, switches
Linux bridges, applications real processes; everything through netlink (rtnl's lean
sessions on the hot paths, pyroute2 for the rest).

Names derive from a per-testbed token, so that everything this testbed made can be found
again after a crash (Recover) and removed (shutdown, ``nepid clean``) without touching
anyone else's namespaces or links.
"""

import concurrent.futures
import contextlib
import errno
import fcntl
import os
import secrets
import socket
import struct
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Dict, List, Optional

import psutil

from nepi.core import exec_sessions, testbed_impl
from nepi.errors import DeploymentError
from nepi.testbeds.netns import apps, nsutil
from nepi.testbeds.netns.rtnl import Rtnl
from nepi.testbeds.netns.constants import TESTBED_ID, TESTBED_VERSION
from nepi.testbeds.netns.metadata import (APPLICATION, INTERFACES, NODE, NODEIFACE, P2PIFACE,
                                          SWITCH, TAPIFACE, TUNIFACE)
from nepi.util.constants import TIME_NOW
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import TestbedStatus as TS
from nepi.util.files import read_json, write_json_atomic
from nepi.util.validation import interface_name_problem

if TYPE_CHECKING:
    from pyroute2 import IPRoute

RESOURCES_FILE = "netns-resources.json"
WORKERS = 4
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_TAP, IFF_NO_PI = 0x0001, 0x0002, 0x1000


TOKEN_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
TOKEN_LENGTH = 8           # 36**8 ~ 2**41: with the in-use check, never shared
IFNAMSIZ = 15
BRIDGE_MAX_PORTS = 1023    # Linux numbers bridge ports 1..1023; one more is refused (EXFULL)


def names_for(token: str) -> Dict[str, str]:
    """Name prefixes of one testbed instance. The token has a fixed length, so a prefix
    can never match another token's names."""
    return {"ns": "nepi-%s-" % token, "bridge": "nb%s" % token, "veth": "nv%s" % token}


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = TOKEN_ALPHABET[rest] + digits
        if not number:
            return digits


def host_link_name(prefix: str, guid: int) -> str:
    """A host interface name: prefix + guid in base 36, within Linux's 15 bytes."""
    name = prefix + _base36(guid)
    if len(name) > IFNAMSIZ:
        raise DeploymentError("guid %d is too large to name a host interface" % guid,
                              guid=guid)
    return name


def token_in_use(token: str) -> bool:
    """Does any namespace or host link already carry ``token``'s names?"""
    prefixes = names_for(token)
    if nsutil.list_namespaces(prefixes["ns"]):
        return True
    return any(name.startswith((prefixes["bridge"], prefixes["veth"]))
               for _, name in socket.if_nameindex())


def new_token() -> str:
    """A fresh random token no resource on this host carries yet."""
    while True:
        token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
        if not token_in_use(token):
            return token


def _iproute() -> "IPRoute":
    """pyroute2's IPRoute, for the rarer requests (shaping, changes and reads while the
    experiment runs); imported on first use (see rtnl's docstring)."""
    from pyroute2 import IPRoute
    return IPRoute()


def _ignore_missing(fn, *args, **kwargs):
    """Call an IPRoute method; an element already gone is no error."""
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        return fn(*args, **kwargs)
    except NetlinkError as e:
        if e.code not in (errno.ENODEV, errno.ENOENT, errno.ESRCH):
            raise


class TestbedController(testbed_impl.TestbedController):
    def __init__(self) -> None:
        super().__init__(TESTBED_ID, TESTBED_VERSION)
        self._token: Optional[str] = None
        self._apps: Dict[int, subprocess.Popen] = {}
        self._app_pids: Dict[int, dict] = {}
        self._captures: Dict[int, dict] = {}
        self._tap_fds: Dict[int, int] = {}
        self._configured = False
        self._lock = threading.RLock()
        self.tunchannels: Dict[int, object] = {}

    # -- naming -------------------------------------------------------------------------

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("netns testbed used before do_setup")
        return self._token

    def ns_name(self, node_guid: int) -> str:
        return names_for(self.token)["ns"] + str(node_guid)

    def bridge_name(self, guid: int) -> str:
        return host_link_name(names_for(self.token)["bridge"], guid)

    def host_veth_name(self, guid: int) -> str:
        return host_link_name(names_for(self.token)["veth"], guid)

    def node_of(self, guid: int) -> int:
        nodes = self.get_connected(guid, "node", "devs") or \
            self.get_connected(guid, "node", "apps")
        if not nodes:
            raise DeploymentError("element %d (%s) is not connected to a Node"
                                  % (guid, self._create[guid]), guid=guid)
        return nodes[0]

    def ifname(self, guid: int) -> str:
        """Interface name inside the node: the ``name`` attribute or eth<N>. A name Linux
        would refuse or truncate is refused here too (values are validated when set;
        this guards the kernel calls and TUNSETIFF's fixed-size buffer)."""
        name = self.get(guid, "name")
        if name:
            problem = interface_name_problem(name)
            if problem:
                raise DeploymentError("element %d (%s), attribute 'name': %r is not a Linux "
                                      "interface name (%s)" % (guid, self._create[guid],
                                                               name, problem), guid=guid)
            return name
        node = self.node_of(guid)
        siblings = sorted(self.get_connected(node, "devs", "node"))
        prefix = "tap" if self._create[guid] == TAPIFACE else \
            "tun" if self._create[guid] == TUNIFACE else "eth"
        same = [g for g in siblings if self._iface_prefix(g) == prefix]
        return "%s%d" % (prefix, same.index(guid))

    def _iface_prefix(self, guid: int) -> str:
        return {TAPIFACE: "tap", TUNIFACE: "tun"}.get(self._create[guid], "eth")

    def _guids_of(self, *factories) -> List[int]:
        return [g for g, f in self._create.items() if f in factories]

    # -- resources file -----------------------------------------------------------------

    def _resources_path(self) -> str:
        return os.path.join(self.root_directory, RESOURCES_FILE)

    def _save_resources(self) -> None:
        write_json_atomic(self._resources_path(), {
            "token": self._token, "prefixes": names_for(self._token),
            "applications": {str(g): info for g, info in self._app_pids.items()},
            "captures": {str(g): {k: v for k, v in c.items() if k != "proc"}
                         for g, c in self._captures.items()}})

    # -- phases -------------------------------------------------------------------------

    def do_setup(self) -> None:
        super().do_setup()
        if os.geteuid() != 0:
            raise DeploymentError("the netns testbed needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) "
                                  "to create namespaces; run as root or with useSudo")
        os.makedirs(self.root_directory, exist_ok=True)
        saved = read_json(self._resources_path(), {}) or {}
        self._token = saved.get("token") or new_token()
        if not saved.get("token"):
            self._save_resources()     # an existing record is kept for recover()

    def create_element(self, guid: int) -> None:
        """Per-element create function: only records; do_create works in batches."""
        self.elements[guid] = self._create[guid]

    def do_create(self) -> None:
        super().do_create()      # records elements and pushes create-time values
        if nsutil.list_namespaces(names_for(self.token)["ns"]):
            # a fresh deployment in a root dir whose previous run was never cleaned up
            self._logger.warning("removing leftovers of an earlier run (token %s)", self.token)
            cleanup(self.root_directory)
            self._save_resources()
        with self._topology_step("create"):
            self._create_namespaces()
            self._create_taps()

    def do_connect_init(self) -> None:
        """The links: bridges with one veth per switched interface, and veth pairs."""
        super().do_connect_init()
        with self._topology_step("connect"):
            self._create_switched_links()
            self._create_p2p_links()

    @contextlib.contextmanager
    def _topology_step(self, phase: str):
        try:
            yield
        except DeploymentError:
            raise
        except Exception as e:
            raise DeploymentError("netns: building the topology failed in %s: %s"
                                  % (phase, e), phase=phase) from e

    def _pool(self, fn, items, what: str) -> None:
        if not items:
            return
        with concurrent.futures.ThreadPoolExecutor(min(WORKERS, len(items))) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for future in concurrent.futures.as_completed(futures):
                exc = future.exception()
                if exc is not None:
                    item = futures[future]
                    raise DeploymentError("netns: %s failed for element %s: %s"
                                          % (what, item, exc), guid=item
                                          if isinstance(item, int) else None) from exc

    def _create_namespaces(self) -> None:
        def make(guid):
            nsutil.create(self.ns_name(guid))
            with nsutil.entered(self.ns_name(guid)):
                if self.get(guid, "forwarding"):
                    nsutil.write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        self._pool(make, self._guids_of(NODE), "creating the namespace")

    def _create_switched_links(self) -> None:
        """Bridges, then one veth per NodeInterface: inner end created directly in its
        node, outer end an enslaved port without IPv6 addresses, up."""
        switches = self._guids_of(SWITCH)
        for guid in switches:
            ports = len(self.get_connected(guid, "devs", "switch"))
            if ports > BRIDGE_MAX_PORTS:
                raise DeploymentError("Switch %d has %d interfaces, but a Linux bridge takes "
                                      "at most %d: use several switches"
                                      % (guid, ports, BRIDGE_MAX_PORTS), guid=guid)
        with Rtnl() as rtnl:
            for guid in switches:
                rtnl.add_bridge(self.bridge_name(guid), self.get(guid, "mtu"),
                                self.get(guid, "up"))
            rtnl.commit()
            bridges = {guid: rtnl.index(self.bridge_name(guid)) for guid in switches}
            for guid in self._guids_of(NODEIFACE):
                switch = self.get_connected(guid, "switch", "devs")
                rtnl.add_veth(self.host_veth_name(guid), self.ifname(guid),
                              rtnl.ns_fd(self.ns_name(self.node_of(guid))),
                              master=bridges[switch[0]] if switch else None, up=True,
                              port_only=True)

    def _create_p2p_links(self) -> None:
        """Each veth pair is made from inside the node of its lower-guid end."""
        by_node: Dict[int, List[tuple]] = {}
        for guid in self._guids_of(P2PIFACE):
            peers = self.get_connected(guid, "p2p", "p2p")
            if not peers:
                raise DeploymentError("P2PNodeInterface %d has no p2p peer" % guid, guid=guid)
            if guid < peers[0]:
                by_node.setdefault(self.node_of(guid), []).append((guid, peers[0]))

        def make(node):
            with Rtnl(self.ns_name(node)) as rtnl:
                for guid, peer in by_node[node]:
                    rtnl.add_veth(self.ifname(guid), self.ifname(peer),
                                  rtnl.ns_fd(self.ns_name(self.node_of(peer))))
        self._pool(make, list(by_node), "creating point-to-point links")

    def _create_taps(self) -> None:
        def make(guid):
            flags = (IFF_TAP if self._create[guid] == TAPIFACE else IFF_TUN) | IFF_NO_PI
            with nsutil.entered(self.ns_name(self.node_of(guid))):
                fd = os.open("/dev/net/tun", os.O_RDWR)
                try:
                    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", self.ifname(guid).encode(),
                                                           flags))
                except BaseException:
                    os.close(fd)
                    raise
            self._tap_fds[guid] = fd
        self._pool(make, self._guids_of(TAPIFACE, TUNIFACE), "creating the TAP/TUN device")

    def tap_fd(self, guid: int) -> int:
        return self._tap_fds[guid]

    def wait_tunchannel(self, guid: int) -> None:
        channel = self.tunchannels.get(guid)
        if channel is not None:
            channel.wait()

    def do_configure(self) -> None:
        """Addresses, link state, MTU, shaping, routes and captures, one thread per node."""
        super().do_configure()
        by_node: Dict[int, List[int]] = {}
        for guid in self._guids_of(*INTERFACES):
            by_node.setdefault(self.node_of(guid), []).append(guid)

        def configure_node(node):
            shaped = []
            with Rtnl(self.ns_name(node)) as rtnl:
                rtnl.set_link(1, up=True)                  # lo
                for iface in by_node.get(node, []):
                    if self._configure_iface(rtnl, iface):
                        shaped.append(iface)
                rtnl.commit()     # routes need their interfaces up with addresses
                for (dest, prefix, nexthop, metric, device) in self._add_route.get(node, []):
                    try:
                        oif = rtnl.index(device) if device else None
                    except OSError:
                        raise DeploymentError("route on node %d names device %r, which the "
                                              "node does not have" % (node, device),
                                              guid=node) from None
                    rtnl.add_route(dest, prefix, nexthop, oif, metric)
            if shaped:
                with nsutil.entered(self.ns_name(node)), _iproute() as ipr:
                    for iface in shaped:
                        self._apply_shaping(ipr, socket.if_nametoindex(self.ifname(iface)),
                                            self.get(iface, "bandwidth"))

        try:
            self._pool(configure_node, self._guids_of(NODE), "configuring the node")
        except DeploymentError as e:
            e.phase = "configure"
            raise
        self._start_captures()
        self._configured = True

    def _configure_iface(self, rtnl: Rtnl, guid: int) -> bool:
        """MAC, MTU, addresses and link state; True if the interface needs shaping."""
        try:
            idx = rtnl.index(self.ifname(guid))
        except OSError:
            raise DeploymentError("interface %s of element %d is missing"
                                  % (self.ifname(guid), guid), guid=guid) from None
        if self.get(guid, "mtu") or self.get(guid, "lladdr"):
            rtnl.set_link(idx, mtu=self.get(guid, "mtu"), address=self.get(guid, "lladdr"))
        for (address, prefix, broadcast) in self._add_address.get(guid, []):
            rtnl.add_address(idx, address, prefix, broadcast)
        if self.get(guid, "up"):
            rtnl.set_link(idx, up=True)
        return bool(self.get(guid, "bandwidth"))

    @staticmethod
    def _apply_shaping(ipr: "IPRoute", idx: int, mbit: float,
                       was_shaped: bool = False) -> None:
        """tbf on egress: rate in Mbit/s, a burst of 10 ms worth of traffic (>= 2 MTU)."""
        if mbit:
            rate = int(mbit * 1e6 / 8)                     # bytes/s
            burst = max(int(rate * 0.01), 2 * 1514 + 100)
            ipr.tc("replace", kind="tbf", index=idx, handle="1:",
                   rate="%dbit" % int(mbit * 1e6), burst=burst, latency="50ms")
        elif was_shaped:
            _ignore_missing(ipr.tc, "del", index=idx, handle="1:", parent=0xFFFFFFFF)

    # -- traces -------------------------------------------------------------------------

    def trace_filename(self, guid: int, trace_id: str) -> str:
        if trace_id == "pcap":
            kind = "node" if self._create[guid] == NODE else "iface"
            return "%d-%s.pcap" % (guid, kind)
        return "%d-%s.trace" % (guid, trace_id)

    def trace_filepath(self, guid: int, trace_id: str) -> str:
        return os.path.join(self.root_directory, self.trace_filename(guid, trace_id))

    def trace(self, guid: int, trace_id: str, attribute: str = "value"):
        if trace_id == "pcap" and attribute in ("value", "base64"):
            self._flush_capture(guid)              # binary: its value is base64 too
            return super().trace(guid, trace_id, "base64")
        return super().trace(guid, trace_id, attribute)

    def _start_captures(self) -> None:
        for guid, traces in self._add_trace.items():
            if "pcap" not in traces:
                continue
            if self._create[guid] == NODE:
                node, ifname = guid, "any"
            else:
                node, ifname = self.node_of(guid), self.ifname(guid)
            path = self.trace_filepath(guid, "pcap")
            proc = start_capture(self.ns_name(node), ifname, path)
            self._captures[guid] = {"pid": proc.pid, "start": _start_time(proc.pid),
                                    "path": path, "proc": proc}
        if self._captures:
            self._save_resources()

    def _flush_capture(self, guid: int) -> None:
        """tcpdump -U writes each packet; give it a moment to reach the file."""
        if guid in self._captures:
            time.sleep(0.05)

    def _stop_captures(self) -> None:
        _stop_processes((cap.get("pid"), cap.get("start"), cap.get("proc"))
                        for cap in self._captures.values())
        self._captures.clear()

    # -- applications -------------------------------------------------------------------

    def start_application(self, guid: int) -> None:
        traces = self._add_trace.get(guid, [])
        user = self.get(guid, "user")
        if self.get(guid, "sudo"):
            user = None
        command = self.get(guid, "command")
        if not command:
            raise DeploymentError("Application %d has no command" % guid, guid=guid)
        proc = apps.spawn(
            self.ns_name(self.node_of(guid)), ["bash", "-c", command],   # NEPI 2: shell text
            stdout_path=self.trace_filepath(guid, "stdout") if "stdout" in traces else None,
            stderr_path=self.trace_filepath(guid, "stderr") if "stderr" in traces else None,
            user=user, environment=apps.parse_environment(self.get(guid, "environment")),
            stdin_text=self.get(guid, "stdin"), cwd=self.root_directory)
        self._apps[guid] = proc
        self._app_pids[guid] = {"pid": proc.pid, "start": _start_time(proc.pid)}
        self._save_resources()

    def stop_application(self, guid: int) -> None:
        info = self._app_pids.get(guid)
        if info is not None:
            _stop_process(info["pid"], info["start"], self._apps.get(guid))

    def application_status(self, guid: int) -> int:
        proc = self._apps.get(guid)
        if proc is not None:
            return AS.STATUS_RUNNING if proc.poll() is None else AS.STATUS_FINISHED
        info = self._app_pids.get(guid)
        if info is None:
            return AS.STATUS_NOT_STARTED
        alive = _same_process(info["pid"], info["start"])
        return AS.STATUS_RUNNING if alive else AS.STATUS_FINISHED

    def start(self, time: str = TIME_NOW) -> None:
        if self._status == TS.STATUS_STARTED:
            return
        super().start(time)

    def action(self, time: str, guid: int, action: str) -> None:
        """Applications can be started (again) and stopped while the experiment runs."""
        self.application_action(guid, action, (APPLICATION,))

    # -- runtime attributes -------------------------------------------------------------

    _LIVE = ("up", "mtu", "bandwidth")

    def set(self, guid: int, name: str, value, time: str = TIME_NOW) -> None:
        super().set(guid, name, value, time)
        if self._configured and name in self._LIVE and self._create[guid] in INTERFACES:
            with self._lock, nsutil.entered(self.ns_name(self.node_of(guid))):
                with _iproute() as ipr:
                    idx = ipr.link_lookup(ifname=self.ifname(guid))[0]
                    if name == "up":
                        ipr.link("set", index=idx, state="up" if value else "down")
                        if value:
                            self._restore_routes(ipr, self.node_of(guid))
                    elif name == "mtu":
                        ipr.link("set", index=idx, mtu=value)
                    else:
                        self._apply_shaping(ipr, idx, value, was_shaped=True)
        elif self._configured and name in ("up", "mtu") and self._create[guid] == SWITCH:
            with _iproute() as host:
                idx = host.link_lookup(ifname=self.bridge_name(guid))[0]
                if name == "up":
                    host.link("set", index=idx, state="up" if value else "down")
                else:
                    host.link("set", index=idx, mtu=value)

    def _restore_routes(self, ipr: "IPRoute", node: int) -> None:
        """The kernel drops routes through a link that goes down: put the node's back."""
        from pyroute2.netlink.exceptions import NetlinkError
        for (dest, prefix, nexthop, metric, device) in self._add_route.get(node, []):
            kwargs = {"dst": "%s/%d" % (dest, prefix)}
            if nexthop:
                kwargs["gateway"] = nexthop
            if metric:
                kwargs["priority"] = metric
            if device:
                kwargs["oif"] = socket.if_nametoindex(device)
            try:
                ipr.route("replace", **kwargs)
            except NetlinkError as e:
                if e.code != errno.ENETUNREACH:   # its own link may still be down
                    raise

    def get(self, guid: int, name: str, time: str = TIME_NOW):
        value = super().get(guid, name, time)
        if self._configured and name in ("up", "mtu", "lladdr") \
                and self._create.get(guid) in INTERFACES:
            from pyroute2.netlink.exceptions import NetlinkError
            try:
                with nsutil.entered(self.ns_name(self.node_of(guid))):
                    with _iproute() as ipr:
                        link = ipr.get_links(ifname=self.ifname(guid))[0]
                if name == "up":
                    return bool(link["flags"] & 1)
                if name == "mtu":
                    return link.get_attr("IFLA_MTU")
                return link.get_attr("IFLA_ADDRESS")
            except (OSError, IndexError, NetlinkError):
                return value
        return value

    def get_values(self, requests: List[list]) -> List:
        """Bulk reads report the configured values (single gets read the kernel)."""
        values = []
        for guid, name in requests:
            try:
                values.append(testbed_impl.TestbedController.get(self, guid, name))
            except Exception:
                values.append(None)
        return values

    # -- teardown and recovery ----------------------------------------------------------

    def _exec_process(self, guid: int, argv, pty: bool, rows: int, cols: int):
        """Inside the node's namespace, as root, in the testbed's folder."""
        if self._create.get(guid) != NODE:
            raise ValueError("element %d is a %s: commands run in a Node" % (
                guid, self._create.get(guid, "unknown element")))
        ns_fd = os.open(nsutil.ns_path(self.ns_name(guid)), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return exec_sessions.spawn(argv, pty, rows, cols, cwd=self.root_directory,
                                       preexec_fn=lambda: nsutil.setns_fd(ns_fd))
        finally:
            os.close(ns_fd)

    def stop(self, time: str = TIME_NOW) -> None:
        """Every application at once: one wait for all of them, not one each."""
        self._stop_applications()
        self._status = TS.STATUS_STOPPED

    def _stop_applications(self) -> None:
        _stop_processes((info["pid"], info["start"], self._apps.get(guid))
                        for guid, info in self._app_pids.items())

    def shutdown(self) -> None:
        """Kill processes, close devices, remove namespaces, bridges and veths."""
        self._exec.close_all()
        self._stop_applications()
        self._stop_captures()
        for tc in list(self.tunchannels.values()):
            tc.close()
        self.tunchannels.clear()
        for fd in self._tap_fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._tap_fds.clear()
        if self._token is not None:
            remove_resources(self._token)
            try:
                os.unlink(self._resources_path())
            except FileNotFoundError:
                pass
        self.elements.clear()
        self._configured = False

    def recover(self) -> None:
        """Re-attach to namespaces, links and processes left by a dead controller."""
        saved = read_json(self._resources_path(), {}) or {}
        if saved.get("token") != self._token:
            raise DeploymentError("no netns resources to recover in %s" % self.root_directory)
        missing = [self.ns_name(g) for g in self._guids_of(NODE)
                   if not nsutil.exists(self.ns_name(g))]
        if missing:
            raise DeploymentError("cannot recover: namespaces %s are gone"
                                  % ", ".join(missing))
        for guid, factory in self._create.items():
            self.elements[guid] = factory
        for key, info in (saved.get("applications") or {}).items():
            self._app_pids[int(key)] = info
        for key, info in (saved.get("captures") or {}).items():
            self._captures[int(key)] = info
        self._configured = True
        self._started = True
        self._status = TS.STATUS_STARTED


def remove_resources(token: str, wait: float = 5.0) -> None:
    """Remove every namespace, bridge and veth named after ``token``, and the processes
    still running inside those namespaces.

    Host veths are not deleted one by one (each deletion is a slow kernel call): they go
    with their namespace, which the kernel frees asynchronously and in batches, and this
    waits for that. Those still there after ``wait`` s without any link vanishing (a
    namespace kept alive from outside) are deleted explicitly."""
    prefixes = names_for(token)

    def host_links() -> Dict[int, str]:
        return {index: name for index, name in socket.if_nameindex()
                if name.startswith((prefixes["bridge"], prefixes["veth"]))}
    bridges = [i for i, name in host_links().items() if name.startswith(prefixes["bridge"])]
    # a bridge floods the nodes' multicast (IPv6 DAD, MLD, router solicitations, for some
    # seconds after deployment) to all its ports: down, it leaves the kernel to removing
    with Rtnl() as rtnl:
        for index in bridges:
            rtnl.set_link(index, up=False, gone_ok=True)
    namespaces = nsutil.list_namespaces(prefixes["ns"])
    for pid in nsutil.pids_in_any(namespaces):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    nsutil.remove_many(namespaces)
    _delete_links(bridges)
    if not _wait_links_gone(host_links, wait):
        _delete_links(host_links())
        _wait_links_gone(host_links, wait)


def _delete_links(indexes) -> None:
    """Delete host links in one netlink burst; one already gone is no error."""
    with Rtnl() as rtnl:
        for index in indexes:
            rtnl.del_link(index)


def _wait_links_gone(host_links, stall: float) -> bool:
    """Poll until ``host_links()`` is empty; False once none vanished for ``stall`` s."""
    left = host_links()
    last_progress = time.monotonic()
    while left:
        if time.monotonic() - last_progress >= stall:
            return False
        time.sleep(0.005)
        now = host_links()
        if len(now) < len(left):
            last_progress = time.monotonic()
        left = now
    return True


def cleanup(root_dir: str) -> None:
    """Testbed hook for ``nepid clean`` and lost controllers: remove this root dir's
    leftovers (only what its token names)."""
    saved = read_json(os.path.join(root_dir, RESOURCES_FILE), {}) or {}
    token = saved.get("token")
    if not token:
        return
    _stop_processes((info.get("pid"), info.get("start"), None) for info in
                    list((saved.get("applications") or {}).values()) +
                    list((saved.get("captures") or {}).values()))
    remove_resources(token)
    try:
        os.unlink(os.path.join(root_dir, RESOURCES_FILE))
    except FileNotFoundError:
        pass


def _find(name: str) -> str:
    from nepi.util.environ import find_bin
    path = find_bin(name)
    if path is None:
        raise DeploymentError("%s is not installed (needed for pcap traces)" % name)
    return path


def _start_time(pid: int) -> Optional[float]:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid, start) -> bool:
    from nepi.rpc.liveness import is_same_process
    return is_same_process(pid, start)


def _stop_process(pid, start, proc) -> None:
    _stop_processes([(pid, start, proc)])


def _stop_processes(processes) -> None:
    """Terminate process groups we started (each checked by start time), all at once,
    reaping those that are our children. ``processes``: (pid, start time, Popen or None)."""
    processes = list(processes)
    apps.kill_groups(pid for pid, start, _ in processes if pid and _same_process(pid, start))
    for _, _, proc in processes:
        if proc is not None:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass


def start_capture(ns_name: str, ifname: str, path: str) -> subprocess.Popen:
    """tcpdump on interface ``ifname`` of namespace ``ns_name`` into ``path``, returned once
    it captures. An argument list: names and paths are data, never shell text."""
    proc = apps.spawn(ns_name, [_find("tcpdump"), "--immediate-mode", "-U", "-n",
                                "-i", ifname, "-w", path], stderr_path=path + ".stderr")
    try:
        _wait_capture_ready(path + ".stderr", proc)
    except BaseException:
        if proc.poll() is None:
            apps.kill_group(proc.pid)
        proc.wait()
        raise
    return proc


def _wait_capture_ready(stderr_path: str, proc, timeout: float = 5.0) -> None:
    """tcpdump prints 'listening on' once it captures; packets before that are lost."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(stderr_path) as f:
                if "listening on" in f.read():
                    return
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            with open(stderr_path) as f:
                raise DeploymentError("tcpdump failed: %s" % f.read().strip())
        time.sleep(0.02)

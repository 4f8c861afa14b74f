"""A lean rtnetlink session for the per-node hot path of deployment.

pyroute2's IPRoute runs each request through an asyncio loop and decodes every reply in
full (~1 ms per request); deploying hundreds of nodes needs a few requests per node. Here
requests are still built and encoded by pyroute2's message classes, but sent in one burst
on a plain netlink socket created inside the namespace, and only the acknowledgements'
error codes are read back (capped acks, no echoed payload).
"""

import errno
import os
import socket
import struct
from typing import List, Optional

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from nepi.testbeds.netns import nsutil

IFF_UP = 1
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NLMSG_ERROR = 2
_ACKED = NLM_F_REQUEST | NLM_F_ACK
_CREATE = _ACKED | NLM_F_CREATE | NLM_F_EXCL
_HEADER = struct.Struct("=LHHLL")
BATCH = 64     # requests per burst: their acks must fit the socket's receive buffer


class Rtnl:
    """Queue requests, then ``commit()`` sends them and checks every acknowledgement."""

    def __init__(self, ns: Optional[str] = None) -> None:
        if ns is None:
            self._sock = self._open()
        else:
            with nsutil.entered(ns):
                self._sock = self._open()   # bound to the namespace it is created in
        self._ns = ns
        self._queue: List[tuple] = []   # (bytes, description, sequence number)
        self._seq = 0

    @staticmethod
    def _open() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        except OSError:     # kernels before 4.2: acks carry the request back, still fine
            pass
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((0, 0))
        return sock

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                self.commit()
        finally:
            self.close()

    def close(self) -> None:
        self._sock.close()

    def index(self, ifname: str) -> int:
        """Interface index inside this session's namespace."""
        if self._ns is None:
            return socket.if_nametoindex(ifname)
        with nsutil.entered(self._ns):
            return socket.if_nametoindex(ifname)

    def _put(self, msg, msg_type: int, flags: int, what: str) -> None:
        self._seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = self._seq
        msg.encode()
        self._queue.append((bytes(msg.data), what, self._seq))
        if len(self._queue) >= BATCH:
            self.commit()

    def commit(self) -> None:
        """Send the queued requests; raise NetlinkError naming the first one refused."""
        if not self._queue:
            return
        queue, self._queue = self._queue, []
        descriptions = {seq: what for (_, what, seq) in queue}
        self._sock.sendall(b"".join(data for data, _, _ in queue))
        pending = len(queue)
        first_error = None
        while pending:
            data = self._sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, _, seq, _ = _HEADER.unpack_from(data, offset)
                if msg_type == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                    pending -= 1
                    if code and first_error is None:
                        first_error = (code, descriptions.get(seq, "request %d" % seq))
                offset += max(length, _HEADER.size)
        if first_error is not None:
            code, what = first_error
            raise NetlinkError(code, "%s: %s" % (what, os.strerror(code)))

    def set_link(self, index: int, up: Optional[bool] = None, mtu: Optional[int] = None,
                 address: Optional[str] = None) -> None:
        msg = ifinfmsg()
        msg["index"] = index
        if up is not None:
            msg["flags"] = IFF_UP if up else 0
            msg["change"] = IFF_UP
        attrs = []
        if mtu:
            attrs.append(["IFLA_MTU", mtu])
        if address:
            attrs.append(["IFLA_ADDRESS", address])
        msg["attrs"] = attrs
        self._put(msg, RTM_NEWLINK, _ACKED, "setting link %d" % index)

    def add_veth(self, ifname: str, peer_ifname: str, peer_ns_fd: Optional[int] = None,
                 master: Optional[int] = None, up: bool = False) -> None:
        """A veth pair: ``ifname`` here, ``peer_ifname`` in the namespace of peer_ns_fd."""
        peer = {"attrs": [["IFLA_IFNAME", peer_ifname]]}
        if peer_ns_fd is not None:
            peer["attrs"].append(["IFLA_NET_NS_FD", peer_ns_fd])
        msg = ifinfmsg()
        if up:
            msg["flags"] = msg["change"] = IFF_UP
        attrs = [["IFLA_IFNAME", ifname],
                 ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "veth"],
                                              ["IFLA_INFO_DATA", {"attrs": [
                                                  ["VETH_INFO_PEER", peer]]}]]}]]
        if master:
            attrs.append(["IFLA_MASTER", master])
        msg["attrs"] = attrs
        self._put(msg, RTM_NEWLINK, _CREATE, "creating veth %s/%s" % (ifname, peer_ifname))

    def add_address(self, index: int, address: str, prefixlen: int,
                    broadcast: Optional[str] = None) -> None:
        msg = ifaddrmsg()
        msg["index"] = index
        msg["family"] = socket.AF_INET6 if ":" in address else socket.AF_INET
        msg["prefixlen"] = prefixlen
        attrs = [["IFA_LOCAL", address], ["IFA_ADDRESS", address]]
        if broadcast:
            attrs.append(["IFA_BROADCAST", broadcast])
        msg["attrs"] = attrs
        self._put(msg, RTM_NEWADDR, _CREATE, "adding address %s/%d" % (address, prefixlen))

    def add_route(self, dst: str, prefixlen: int, gateway: Optional[str] = None,
                  oif: Optional[int] = None, priority: Optional[int] = None) -> None:
        msg = rtmsg()
        msg["family"] = socket.AF_INET6 if ":" in dst else socket.AF_INET
        msg["dst_len"] = prefixlen
        msg["table"] = 254            # main
        msg["proto"] = 3              # boot, as `ip route add`
        msg["scope"] = 0 if gateway else 253   # universe via a gateway, else link
        msg["type"] = 1               # unicast
        attrs = [["RTA_TABLE", 254], ["RTA_DST", dst]]
        if gateway:
            attrs.append(["RTA_GATEWAY", gateway])
        if oif:
            attrs.append(["RTA_OIF", oif])
        if priority:
            attrs.append(["RTA_PRIORITY", priority])
        msg["attrs"] = attrs
        self._put(msg, RTM_NEWROUTE, _CREATE, "adding route %s/%d%s" % (
            dst, prefixlen, " via %s" % gateway if gateway else ""))


def is_gone(error: NetlinkError) -> bool:
    return error.code in (errno.ENODEV, errno.ENOENT, errno.ESRCH)

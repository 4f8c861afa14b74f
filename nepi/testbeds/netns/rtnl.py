"""A lean rtnetlink session for the hot paths of deployment and teardown.

pyroute2's IPRoute runs each request through an asyncio loop and decodes every reply in
full (~1 ms per request), and its message classes take about as long to encode one; a
deployment of thousands of nodes needs a few requests per node. Here requests are packed
with struct, sent in bursts on a plain netlink socket created inside the namespace, and
only the acknowledgements' error codes are read back (capped acks, no echoed payload).
This module does not import pyroute2: a testbed daemon that needs nothing else never
loads it (11 MB of RSS, and a slower exit).
"""

import errno
import os
import socket
import struct
from typing import List, Optional, Sequence, Tuple

from nepi.testbeds.netns import nsutil

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_ACKED = NLM_F_REQUEST | NLM_F_ACK
_GONE = (errno.ENODEV, errno.ENOENT)
_CREATE = _ACKED | NLM_F_CREATE | NLM_F_EXCL
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24
IFF_UP = 1
# attribute numbers (linux/if_link.h, if_addr.h, rtnetlink.h, veth.h)
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_LINKINFO, IFLA_AF_SPEC, IFLA_NET_NS_FD = 18, 26, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 8, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RTN_UNICAST = 254, 3, 0, 253, 1

HAVE_IPV6 = os.path.isdir("/proc/sys/net/ipv6")
BATCH = 64     # requests per burst: their acks must fit the socket's receive buffer

_HEADER = struct.Struct("=LHHLL")        # nlmsghdr: length, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")       # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")        # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")     # rtmsg: family, dst_len, src_len, tos, table,
#                                          protocol, scope, type, flags
_NLA = struct.Struct("=HH")              # nlattr: length, type
_U32 = struct.Struct("=I")


def _attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes (the length excludes the padding)."""
    data = _NLA.pack(_NLA.size + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _attrs(*attrs: Tuple[int, bytes]) -> bytes:
    return b"".join(_attr(kind, payload) for kind, payload in attrs)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _family_and_bytes(address: str) -> Tuple[int, bytes]:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return family, socket.inet_pton(family, address)


def _mac(address: str) -> bytes:
    return bytes(int(part, 16) for part in address.split(":"))


class Rtnl:
    """Queue requests, then ``commit()`` sends them and checks every acknowledgement."""

    def __init__(self, ns: Optional[str] = None) -> None:
        if ns is None:
            self._sock = self._open()
        else:
            with nsutil.entered(ns):
                self._sock = self._open()   # bound to the namespace it is created in
        self._ns = ns
        self._queue: List[tuple] = []   # (bytes, description, sequence number, ok codes)
        self._seq = 0
        self._ns_fds: List[int] = []    # namespace fds the queued requests refer to

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
        self._close_ns_fds()
        self._sock.close()

    def ns_fd(self, ns: str) -> int:
        """An fd of namespace ``ns`` for a queued request, closed once it was answered: a
        deployment of thousands of nodes holds at most one burst's worth open."""
        self._ns_fds.append(os.open(nsutil.ns_path(ns), os.O_RDONLY | os.O_CLOEXEC))
        return self._ns_fds[-1]

    def _close_ns_fds(self) -> None:
        fds, self._ns_fds = self._ns_fds, []
        for fd in fds:
            os.close(fd)

    def index(self, ifname: str) -> int:
        """Interface index inside this session's namespace."""
        if self._ns is None:
            return socket.if_nametoindex(ifname)
        with nsutil.entered(self._ns):
            return socket.if_nametoindex(ifname)

    def _put(self, msg_type: int, flags: int, body: bytes, what: str,
             ok: Sequence[int] = ()) -> None:
        """Queue a request; error codes in ``ok`` count as success."""
        self._seq += 1
        header = _HEADER.pack(_HEADER.size + len(body), msg_type, flags, self._seq, 0)
        self._queue.append((header + body, what, self._seq, tuple(ok)))
        if len(self._queue) >= BATCH:
            self.commit()

    def commit(self) -> None:
        """Send the queued requests; raise OSError naming the first one refused."""
        if not self._queue:
            return
        queue, self._queue = self._queue, []
        requests = {seq: (what, ok) for (_, what, seq, ok) in queue}
        try:
            self._sock.sendall(b"".join(entry[0] for entry in queue))
            first_error = self._read_acks(requests)
        finally:
            self._close_ns_fds()      # every request they were sent with is answered
        if first_error is not None:
            code, what = first_error
            raise OSError(code, "%s: %s" % (what, os.strerror(code)))

    def _read_acks(self, requests: dict) -> Optional[tuple]:
        """Read the acknowledgements of ``requests`` ({seq: (description, ok codes)});
        the first error as (code, description)."""
        pending = len(requests)
        first_error = None
        while pending:
            data = self._sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, _, seq, _ = _HEADER.unpack_from(data, offset)
                if msg_type == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                    pending -= 1
                    what, ok = requests.get(seq, ("request %d" % seq, ()))
                    if code and code not in ok and first_error is None:
                        first_error = (code, what)
                offset += max(length, _HEADER.size)
        return first_error

    # -- links ----------------------------------------------------------------------------

    @staticmethod
    def _ifinfo(index: int = 0, up: Optional[bool] = None) -> bytes:
        if up is None:
            return _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0)
        return _IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP)

    def set_link(self, index: int, up: Optional[bool] = None, mtu: Optional[int] = None,
                 address: Optional[str] = None, gone_ok: bool = False) -> None:
        """Change a link; with ``gone_ok``, one already gone is no error."""
        attrs = []
        if mtu:
            attrs.append((IFLA_MTU, _U32.pack(mtu)))
        if address:
            attrs.append((IFLA_ADDRESS, _mac(address)))
        self._put(RTM_NEWLINK, _ACKED, self._ifinfo(index, up) + _attrs(*attrs),
                  "setting link %d" % index, ok=_GONE if gone_ok else ())

    def add_bridge(self, ifname: str, mtu: Optional[int] = None, up: bool = False) -> None:
        attrs = [(IFLA_IFNAME, _name(ifname)),
                 (IFLA_LINKINFO, _attr(IFLA_INFO_KIND, _name("bridge")))]
        if mtu:
            attrs.append((IFLA_MTU, _U32.pack(mtu)))
        self._put(RTM_NEWLINK, _CREATE, self._ifinfo(up=up or None) + _attrs(*attrs),
                  "creating bridge %s" % ifname)

    def add_veth(self, ifname: str, peer_ifname: str, peer_ns_fd: Optional[int] = None,
                 master: Optional[int] = None, up: bool = False,
                 port_only: bool = False) -> None:
        """A veth pair: ``ifname`` here, ``peer_ifname`` in the namespace of peer_ns_fd.

        ``port_only``: ``ifname`` is only a switch port and gets no IPv6 link-local
        address, so it sends no DAD, MLD or router solicitation, which a bridge would
        flood to every other port."""
        peer = [(IFLA_IFNAME, _name(peer_ifname))]
        if peer_ns_fd is not None:
            peer.append((IFLA_NET_NS_FD, _U32.pack(peer_ns_fd)))
        info = _attrs((IFLA_INFO_KIND, _name("veth")), (IFLA_INFO_DATA, _attr(
            VETH_INFO_PEER, self._ifinfo() + _attrs(*peer))))
        attrs = [(IFLA_IFNAME, _name(ifname)), (IFLA_LINKINFO, info)]
        if master:
            attrs.append((IFLA_MASTER, _U32.pack(master)))
        port_only = port_only and HAVE_IPV6
        self._put(RTM_NEWLINK, _CREATE, self._ifinfo(up=(up and not port_only) or None) +
                  _attrs(*attrs), "creating veth %s/%s" % (ifname, peer_ifname))
        if port_only:
            # the kernel takes the address generation mode on an existing link only,
            # and before the link goes up
            no_link_local = _attr(socket.AF_INET6, _attr(IFLA_INET6_ADDR_GEN_MODE,
                                                         bytes([IN6_ADDR_GEN_MODE_NONE])))
            self._put(RTM_NEWLINK, _ACKED, self._ifinfo(up=up or None) +
                      _attrs((IFLA_IFNAME, _name(ifname)), (IFLA_AF_SPEC, no_link_local)),
                      "configuring port %s" % ifname)

    def del_link(self, index: int) -> None:
        """Delete a link; one already gone is no error."""
        self._put(RTM_DELLINK, _ACKED, self._ifinfo(index), "deleting link %d" % index,
                  ok=_GONE)

    # -- addresses and routes -------------------------------------------------------------

    def add_address(self, index: int, address: str, prefixlen: int,
                    broadcast: Optional[str] = None) -> None:
        family, packed = _family_and_bytes(address)
        attrs = [(IFA_LOCAL, packed), (IFA_ADDRESS, packed)]
        if broadcast:
            attrs.append((IFA_BROADCAST, _family_and_bytes(broadcast)[1]))
        self._put(RTM_NEWADDR, _CREATE, _IFADDR.pack(family, prefixlen, 0, 0, index) +
                  _attrs(*attrs), "adding address %s/%d" % (address, prefixlen))

    def add_route(self, dst: str, prefixlen: int, gateway: Optional[str] = None,
                  oif: Optional[int] = None, priority: Optional[int] = None) -> None:
        """A unicast route in the main table, as ``ip route add`` makes it."""
        family, packed = _family_and_bytes(dst)
        attrs = [(RTA_TABLE, _U32.pack(RT_TABLE_MAIN)), (RTA_DST, packed)]
        if gateway:
            attrs.append((RTA_GATEWAY, _family_and_bytes(gateway)[1]))
        if oif:
            attrs.append((RTA_OIF, _U32.pack(oif)))
        if priority:
            attrs.append((RTA_PRIORITY, _U32.pack(priority)))
        scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
        body = _RTMSG.pack(family, prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope,
                           RTN_UNICAST, 0)
        self._put(RTM_NEWROUTE, _CREATE, body + _attrs(*attrs), "adding route %s/%d%s" % (
            dst, prefixlen, " via %s" % gateway if gateway else ""))

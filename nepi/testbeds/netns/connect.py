"""Cross-testbed connection code of the netns testbed."""

import socket

from nepi.util.tunchannel import STATS, TunChannel, connect_cross_peer, endpoint_addresses


def _require_ethernet(testbed_instance, device, cross_data):
    """ns-3's FdNetDevice (3.44) reads and writes Ethernet frames only (Dix, Llc, DixPi
    encapsulations): a TUN interface (raw IP) cannot feed it."""
    if cross_data.get("_testbed_id") == "ns3" and \
            testbed_instance.get_factory_id(device) == "TunNodeInterface":
        raise RuntimeError("TunNodeInterface %d carries raw IP packets, but ns-3's "
                           "FdNetDevice exchanges Ethernet frames: use a TapNodeInterface"
                           % device)


def connect_fd(testbed_instance, guid, cross_data):
    """Hand this TAP/TUN device's fd to the peer (e.g. an ns-3 FdNetDevice) through the
    Unix socket it published as ``tun_addr``. The device keeps its own fd (it owns the
    interface), so this works again when the peer's testbed is restarted."""
    address = cross_data.get("tun_addr")
    if not address:
        raise RuntimeError("peer element %s published no tun_addr to receive the fd"
                           % cross_data.get("_guid"))
    _require_ethernet(testbed_instance, guid, cross_data)
    fd = testbed_instance.tap_fd(guid)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address if not address.startswith("@") else "\0" + address[1:])
        socket.send_fds(sock, [b"0"], [fd])


def _channel(testbed_instance, guid, cross_data) -> TunChannel:
    channel = testbed_instance.tunchannels.get(guid)
    if channel is None:
        devices = testbed_instance.get_connected(guid, "->fd", "fd->")
        if not devices:
            raise RuntimeError("TunChannel %d is not connected to a TAP/TUN interface" % guid)
        _require_ethernet(testbed_instance, devices[0], cross_data)
        channel = TunChannel(testbed_instance.tap_fd(devices[0]),
                             mtu=testbed_instance.get(devices[0], "mtu"))
        testbed_instance.tunchannels[guid] = channel
        testbed_instance.provide(guid, STATS, channel.stats_text)
    return channel


def tunchannel_init(testbed_instance, guid, cross_data, proto):
    """Open the local endpoint and publish its address and port to the peer (the link key
    comes from the experiment controller, not from the peer).

    Run again because the peer's testbed was restarted, it changes nothing: the endpoint
    (and what was published about it) outlives the peer."""
    channel = _channel(testbed_instance, guid, cross_data)
    if channel.tun_port is not None:
        return
    cipher = testbed_instance.get(guid, "tun_cipher")
    if cipher:
        channel.tun_cipher = cipher
    bind_to, advertise = endpoint_addresses(cross_data)
    channel.bind(proto, bind_to, testbed_instance.get(guid, "tun_port") or 0, advertise)
    for name, value in (("tun_proto", proto), ("tun_addr", channel.tun_addr),
                        ("tun_port", channel.tun_port)):
        testbed_instance.set(guid, name, value)


def tunchannel_compl(testbed_instance, guid, cross_data, proto):
    """Connect to the peer's published endpoint and start forwarding (again, to a
    restarted peer: the running forwarder is replaced)."""
    connect_cross_peer(_channel(testbed_instance, guid, cross_data), guid, cross_data, proto)

"""TunChannels refuse strangers (issue 11, point 4): each test performs an attack on a real
channel (real UDP/TCP sockets on 127.0.0.1, a socketpair standing for the TAP device) and
checks that it fails safely -- nothing reaches the device, the channel keeps forwarding
for the real peer, and the attempt is counted.

Then, on real network namespaces (root): two netns testbeds joined by a TunChannel pair
ping each other authenticated, the link key is in no XML or log, a NEPI 2 ``tun_key``
still works, and the key survives a kill -9 of nepid + recovery and a Restart of one side.
"""

import json
import logging
import os
import secrets
import socket
import stat
import struct
import threading

import pytest

import netns_experiments as nx
from helpers import needs_netns, wait_finished, wait_until
from mock_experiments import nepid_command
from nepi.util import tunchannel as tc
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS
from nepi.util.tunchannel import HELLO, Opener, Records, Sealer, TunChannel, record

KEY = secrets.token_hex(32)
WRONG_KEY = bytes.fromhex(secrets.token_hex(32))
REFUSED = ("frames_forged", "frames_replayed", "frames_malformed", "frames_oversized",
           "connections_rejected")


# -- helpers ------------------------------------------------------------------------------

class Ends:
    """TunChannels made by a test, each forwarding one end of a socketpair (``device``:
    what the TAP would hold); all closed at teardown."""

    def __init__(self):
        self.closables = []

    def channel(self, proto, cipher="AES"):
        device, local = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        device.settimeout(5)
        channel = TunChannel()
        channel.tun_cipher = cipher
        channel.attach_socket(local)
        channel.bind(proto)
        self.closables += [channel, device]
        return channel, device

    def socket(self, kind=socket.SOCK_DGRAM):
        sock = socket.socket(socket.AF_INET, kind)
        sock.settimeout(10)
        self.closables.append(sock)
        return sock

    def close(self):
        for closable in reversed(self.closables):
            closable.close()


@pytest.fixture
def ends():
    made = Ends()
    yield made
    made.close()


def join(a, b, key=KEY):
    for x, y in ((a, b), (b, a)):
        x.connect_peer(y.tun_addr, y.tun_port, y.tun_proto, y.tun_cipher, key)
    a.wait(15)
    b.wait(15)


def crosses(device, other, payload):
    device.send(payload)
    return other.recv(65536) == payload


def nothing_pending(device):
    """True if no frame is waiting on the device end (what the stranger sent is not in)."""
    device.setblocking(False)
    try:
        device.recv(65536)
    except BlockingIOError:
        return True
    finally:
        device.settimeout(5)
    return False


def refused(channel):
    return {name: n for name, n in channel.counters().items() if name in REFUSED and n}


def udp_peer(ends, channel, side=0):
    """A UDP socket that ``channel`` takes for its peer (the attacker owns the peer's
    address: spoofed, or on the path); ``side`` is the channel's."""
    peer = ends.socket()
    peer.bind(("127.0.0.1", 0))
    peer.connect((channel.tun_addr, channel.tun_port))
    channel.connect_peer(*peer.getsockname(), "udp", "AES", KEY, side=side)
    channel.wait(5)
    return peer


def acceptor_and_connector(ends):
    """Two TCP channels, the one that accepts first (the end with the higher endpoint)."""
    (a, da), (b, db) = ends.channel("tcp"), ends.channel("tcp")
    if (a.tun_addr, a.tun_port) < (b.tun_addr, b.tun_port):
        (a, da), (b, db) = (b, db), (a, da)
    return (a, da), (b, db)


def hello_as_connector(sock, key, side):
    """Play the connecting end of the hello exchange (as the real peer would)."""
    records, opener = Records(tc.MAX_FRAME), Opener(bytes.fromhex(key), 1 - side, tc.MAX_FRAME)
    sealer = Sealer(bytes.fromhex(key), side)
    theirs = opener.open(read_record(sock, records), HELLO)[1][:tc.CHALLENGE]
    mine = secrets.token_bytes(tc.CHALLENGE)
    sock.sendall(record(sealer.seal(mine + theirs, HELLO)))
    assert opener.open(read_record(sock, records), HELLO)[1][tc.CHALLENGE:] == mine
    return sealer


def read_record(sock, records):
    while not records.frames:
        data = sock.recv(65536)
        assert data, "the channel closed the connection"
        records.feed(data)
    return records.frames.popleft()


def closed_by_channel(sock):
    """True once the channel closed ``sock`` (EOF or reset); reading its hello first. A
    channel that kept the connection open makes recv time out: the test fails."""
    while True:
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True


# -- TCP ------------------------------------------------------------------------------------

def test_strangers_connecting_first_do_not_hold_the_tcp_peer_out(ends):
    """Before the real peer, four strangers connect to the listener: one stays silent,
    one answers with a hello sealed under a wrong key, one replays an authentic hello of
    another session (its echo is not our challenge), one sends garbage. The real peer
    still gets in; none of their bytes reach the device; each is counted."""
    (acceptor, device), (peer, peer_device) = acceptor_and_connector(ends)
    listener = (acceptor.tun_addr, acceptor.tun_port)
    silent, wrong_key, replayed, garbage = (ends.socket(socket.SOCK_STREAM) for _ in range(4))
    for sock in (silent, wrong_key, replayed, garbage):
        sock.connect(listener)
    stale = Sealer(bytes.fromhex(KEY), 0).seal(secrets.token_bytes(32), HELLO)
    wrong_key.sendall(record(Sealer(WRONG_KEY, 0).seal(secrets.token_bytes(32), HELLO)))
    replayed.sendall(record(stale))
    garbage.sendall(b"\x00\x00\x00\x20\x00" + secrets.token_bytes(31))   # version 0
    join(acceptor, peer)
    assert crosses(peer_device, device, b"frame from the real peer")
    assert crosses(device, peer_device, b"and back")
    assert wait_until(lambda: acceptor.connections_rejected >= 3, 10)
    counts = acceptor.counters()
    assert counts["frames_forged"] == 1 and counts["frames_replayed"] == 1 \
        and counts["frames_malformed"] == 1, counts
    for sock in (wrong_key, replayed, garbage):
        assert closed_by_channel(sock)
    assert nothing_pending(device)
    assert acceptor.forwarding and peer.forwarding
    assert crosses(peer_device, device, b"still forwarding")


def test_a_4gb_length_prefix_from_a_stranger_closes_its_connection(ends):
    """A stranger claims a 4 GB frame first thing: the listener closes that connection
    at once (nothing is buffered for it) and the real peer connects afterwards."""
    (acceptor, device), (peer, peer_device) = acceptor_and_connector(ends)
    stranger = ends.socket(socket.SOCK_STREAM)
    stranger.connect((acceptor.tun_addr, acceptor.tun_port))
    stranger.sendall(b"\xff\xff\xff\xff" + b"x" * 1000)
    join(acceptor, peer)
    assert closed_by_channel(stranger)
    assert refused(acceptor) == {"frames_oversized": 1, "connections_rejected": 1}
    assert crosses(peer_device, device, b"the peer got in")


def test_a_4gb_length_prefix_on_the_established_connection_closes_it(ends):
    """Even the authenticated peer cannot make the channel buffer a claimed 4 GB frame:
    the prefix above MTU + headers closes the connection."""
    channel, device = ends.channel("tcp")
    channel.connect_peer("127.0.0.1", 1, "tcp", "AES", KEY)   # lower endpoint: we accept
    sock = ends.socket(socket.SOCK_STREAM)
    sock.connect((channel.tun_addr, channel.tun_port))
    sealer = hello_as_connector(sock, KEY, side=0)
    channel.wait(5)
    sock.sendall(record(sealer.seal(b"an authentic frame")))
    assert device.recv(65536) == b"an authentic frame"
    sock.sendall(b"\xff\xff\xff\xff" + b"x" * 1000)
    assert closed_by_channel(sock)
    assert refused(channel) == {"frames_oversized": 1, "connections_rejected": 1}
    assert nothing_pending(device)


# -- UDP ------------------------------------------------------------------------------------

def test_udp_frames_under_a_wrong_key_are_forged_and_not_delivered(ends):
    """Frames from the peer's address sealed under another key, reflected back to the
    channel, or sent from another port: none reaches the device; the wrong-key and the
    reflected ones are counted as forged (the kernel drops the other port's)."""
    channel, device = ends.channel("udp")
    peer = udp_peer(ends, channel, side=1)
    stranger = ends.socket()
    stranger.sendto(Sealer(bytes.fromhex(KEY), 0).seal(b"other port"),
                    (channel.tun_addr, channel.tun_port))
    peer.send(Sealer(WRONG_KEY, 0).seal(b"wrong key"))
    device.send(b"outgoing")
    reflected = peer.recv(65536)
    peer.send(reflected)
    assert wait_until(lambda: channel.frames_forged == 2, 5), channel.counters()
    peer.send(Sealer(bytes.fromhex(KEY), 0).seal(b"authentic"))
    assert device.recv(65536) == b"authentic"     # the first and only frame delivered
    assert nothing_pending(device)
    assert refused(channel) == {"frames_forged": 2}


def test_a_replayed_udp_frame_is_dropped(ends):
    """An on-path attacker relays the frames between two channels and captures them;
    replaying a captured frame (now, and after newer frames) delivers nothing."""
    (a, device_a), (b, device_b) = ends.channel("udp"), ends.channel("udp")
    relay_a, relay_b = ends.socket(), ends.socket()   # what A and B take for each other
    for sock in (relay_a, relay_b):
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
    captured = []
    stop = threading.Event()

    def relay():
        while not stop.is_set():
            for src, dst, to in ((relay_a, relay_b, b), (relay_b, relay_a, a)):
                try:
                    frame = src.recv(65536)
                except socket.timeout:
                    continue
                captured.append((frame, dst, to))
                dst.sendto(frame, (to.tun_addr, to.tun_port))
    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        a.connect_peer(*relay_a.getsockname(), "udp", "AES", KEY, side=0)
        b.connect_peer(*relay_b.getsockname(), "udp", "AES", KEY, side=1)
        assert crosses(device_b, device_a, b"first")
        assert crosses(device_b, device_a, b"second")
    finally:
        stop.set()
        thread.join(5)
    frame, dst, to = captured[0]                      # B's "first", as it crossed
    assert to is a
    dst.sendto(frame, (a.tun_addr, a.tun_port))
    assert wait_until(lambda: a.frames_replayed == 1, 5), a.counters()
    assert nothing_pending(device_a)
    assert refused(a) == {"frames_replayed": 1} and a.frames_in == 2


def test_oversized_and_malformed_udp_frames_are_dropped(ends):
    """A datagram above MTU + headers (even one that authenticates) and one shorter than
    a header are dropped and counted; the channel keeps delivering."""
    channel, device = ends.channel("udp")
    peer = udp_peer(ends, channel, side=1)
    sealer = Sealer(bytes.fromhex(KEY), 0)
    peer.send(sealer.seal(b"x" * (channel.mtu + tc.LINK_HEADERS + 1)))
    peer.send(b"\x01\x00\x00")
    assert wait_until(lambda: channel.frames_oversized and channel.frames_malformed, 5)
    peer.send(sealer.seal(b"y" * channel.mtu))
    assert device.recv(65536) == b"y" * channel.mtu
    assert refused(channel) == {"frames_oversized": 1, "frames_malformed": 1}


def test_refused_frames_are_logged_once_then_summarised(ends, caplog, monkeypatch):
    """The first refused frame of a kind is a warning; the next ones only show in the
    periodic summary (here forced by closing), not one line per frame."""
    channel, device = ends.channel("udp")
    peer = udp_peer(ends, channel, side=1)
    with caplog.at_level(logging.WARNING, logger="nepi.tunchannel"):
        for _ in range(20):
            peer.send(Sealer(WRONG_KEY, 0).seal(b"forged"))
        assert wait_until(lambda: channel.frames_forged == 20, 5)
        channel.close()
    lines = [r.getMessage() for r in caplog.records if "forged" in r.getMessage()]
    assert len(lines) == 2, lines
    assert "does not authenticate" in lines[0] and "frames_forged=20" in lines[1]
    assert KEY not in caplog.text


# -- ciphers ------------------------------------------------------------------------------

@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_plain_on_both_ends_is_the_documented_opt_out(ends, proto, caplog):
    """tun_cipher PLAIN on both ends: frames cross as they are (no key needed) and a
    warning says so; a frame above the size limit is still dropped."""
    (a, device_a), (b, device_b) = ends.channel(proto, "PLAIN"), ends.channel(proto, "PLAIN")
    with caplog.at_level(logging.WARNING, logger="nepi.tunchannel"):
        join(a, b, key=None)
    assert "unauthenticated" in caplog.text
    assert crosses(device_a, device_b, b"in the clear")
    assert crosses(device_b, device_a, b"back")
    if proto == "udp":
        raw = ends.socket()
        raw.bind(("127.0.0.1", 0))
        a.connect_peer(*raw.getsockname(), "udp", "PLAIN", None)
        a.wait(5)
        raw.sendto(b"z" * (a.mtu + tc.LINK_HEADERS + 1), (a.tun_addr, a.tun_port))
        raw.sendto(b"plain frame", (a.tun_addr, a.tun_port))
        assert device_a.recv(65536) == b"plain frame"
        assert refused(a) == {"frames_oversized": 1}


def test_mismatched_ciphers_and_a_missing_key_are_clear_errors(ends):
    (a, _), (b, _) = ends.channel("udp"), ends.channel("udp", "PLAIN")
    with pytest.raises(RuntimeError, match="cipher mismatch: this end has tun_cipher AES, "
                                           "the peer PLAIN"):
        a.connect_peer(b.tun_addr, b.tun_port, "udp", "PLAIN", KEY)
    b.tun_cipher = "Blowfish"
    with pytest.raises(RuntimeError, match="cipher mismatch"):
        a.connect_peer(b.tun_addr, b.tun_port, "udp", "Blowfish", KEY)
    with pytest.raises(RuntimeError, match="no link key"):
        a.connect_peer(b.tun_addr, b.tun_port, "udp", "AES", None)
    assert a.connections == 0


def test_nepi2_ciphers_all_select_the_authenticated_channel(ends):
    """AES, Blowfish, DES3 and DES (NEPI 2's values) map onto the AEAD: with the same
    value on both ends frames cross, and a stranger's forged frame does not."""
    for cipher in ("Blowfish", "DES3", "DES"):
        (a, device_a), (b, device_b) = ends.channel("udp", cipher), ends.channel("udp", cipher)
        join(a, b)
        assert crosses(device_a, device_b, cipher.encode())
        stranger = ends.socket()
        stranger.bind(("127.0.0.1", 0))
        b.connect_peer(*stranger.getsockname(), "udp", cipher, KEY)
        b.wait(5)
        stranger.sendto(b"\x01\x00" + secrets.token_bytes(60), (b.tun_addr, b.tun_port))
        assert wait_until(lambda: b.frames_forged == 1, 5)
        assert nothing_pending(device_b)


# -- real namespaces ------------------------------------------------------------------------

def files_under(root):
    return [os.path.join(d, f) for d, _, names in os.walk(str(root)) for f in names]


def key_leaks(root, key):
    """Files under ``root`` that hold ``key`` (apart from the 0600 key file)."""
    leaks = []
    for path in files_under(root):
        if os.path.basename(path) == "link-keys.json" or stat.S_ISSOCK(os.lstat(path).st_mode):
            continue
        with open(path, "rb") as f:
            if key.encode() in f.read():
                leaks.append(path)
    return leaks


@needs_netns
@pytest.mark.parametrize("proto", ["udp", "tcp"])
@pytest.mark.parametrize("design_key", [None, "a NEPI 2 tun_key"])
def test_netns_tunchannels_ping_authenticated_with_a_key_in_no_xml(tmp_path, nepi_kit,
                                                                   netns_leftovers, proto,
                                                                   design_key):
    """Two netns testbeds, a TAP in each fed by a TunChannel (default tun_cipher AES):
    the ping crosses authenticated; both ends got the controller's key (random, kept in
    link-keys.json 0600; or derived from a NEPI 2 design's tun_key, then no file); the key
    is in no XML or log; counters show the frames and no refusal, in tun_stats and in
    the testbeds' summary (nepid status)."""
    from nepi.core import tunnels
    exp_desc, b = nx.make_tunnel("TapNodeInterface", proto, command="ping -c3 -i0.2 10.0.1.2")
    if design_key:
        b["chan_b"].set_attribute_value("tun_key", design_key)
    controller = nepi_kit.create_ec(exp_desc.to_xml(), nx_config(tmp_path))
    controller.start()
    assert len(netns_leftovers.tokens) == 2            # both testbeds, known to the check
    assert wait_finished(controller, b["app"].guid, 30)
    assert " 0% packet loss" in controller.trace(b["app"].guid, "stdout")
    key_file = tmp_path / "link-keys.json"
    link = "%d-%d" % (b["chan_a"].guid, b["chan_b"].guid)
    if design_key:
        assert not key_file.exists()
        key = tunnels.derive_link_key(design_key, link)
    else:
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        keys = json.loads(key_file.read_text())
        assert list(keys) == [link] and len(keys[link]) == 64
        key = keys[link]
    for guid in (b["chan_a"].guid, b["chan_b"].guid):
        stats = tc.parse_stats(controller.get(guid, "tun_stats"))
        assert stats["frames_in"] >= 3 and stats["frames_out"] >= 3, stats
        assert not any(stats[name] for name in REFUSED), stats
    summary = {s["guid"]: s["channels"] for s in controller.testbeds_summary()}
    assert summary[b["desc_a"].guid]["channels"] == 1
    assert summary[b["desc_b"].guid]["frames_in"] >= 3
    controller.stop()
    controller.shutdown()
    assert (tmp_path / "execute.xml").exists() and (tmp_path / "experiment.xml").exists()
    assert key_leaks(tmp_path, key) == []


def nx_config(root):
    from nepi.util import proxy
    return proxy.AccessConfiguration({DC.ROOT_DIRECTORY: str(root)})


@needs_netns
def test_link_key_survives_nepid_kill9_recovery_and_a_restart(tmp_path, nepi_kit,
                                                              netns_leftovers):
    """Both testbeds are daemons, B with the Restart policy, the controller is nepid.
    nepid is killed -9 and recovered (the channels keep forwarding); then B's daemon is
    killed -9 and restarted by the recovered controller, which hands both ends the key
    from link-keys.json: the ping crosses again, with the same key, and nothing refused."""
    exp_desc, b = nx.make_tunnel("TapNodeInterface", "udp", command="ping -c3 -i0.2 10.0.1.2")
    b["dev_b"].set_attribute_value("lladdr", "02:00:0a:00:01:02")  # A's ARP entry holds
    nx.as_daemon(b["desc_a"])
    nx.as_daemon(b["desc_b"], policy=DC.POLICY_RESTART)
    xml = exp_desc.to_xml()
    config = nepi_kit.ec_config(tmp_path)
    controller = nepi_kit.create_ec(xml, config)
    controller.start()
    app, tb_b = b["app"].guid, b["desc_b"].guid
    assert wait_finished(controller, app, 30)
    assert " 0% packet loss" in controller.trace(app, "stdout")
    keys = json.loads((tmp_path / "link-keys.json").read_text())
    nepi_kit.kill9(controller.pid)
    config.set_attribute_value(DC.RECOVER, True)
    recovered = nepi_kit.create_ec(xml, config)
    assert recovered.failed_testbeds() == {}
    recovered.action(app, "start")
    assert wait_finished(recovered, app, 30)
    assert " 0% packet loss" in recovered.trace(app, "stdout")
    dead = nepi_kit.testbed_pid(tmp_path, tb_b)
    nepi_kit.kill9(dead)
    assert nepi_kit.wait_until(
        lambda: nepi_kit.testbed_pid(tmp_path, tb_b) not in (None, dead)
        and recovered.status(tb_b) == TS.STATUS_STARTED, 60, 0.2), "B was not restarted"
    assert recovered.failed_testbeds() == {}
    recovered.action(app, "start")
    assert wait_finished(recovered, app, 30)
    assert " 0% packet loss" in recovered.trace(app, "stdout")
    assert json.loads((tmp_path / "link-keys.json").read_text()) == keys
    stats = tc.parse_stats(recovered.get(b["chan_a"].guid, "tun_stats"))
    assert stats["frames_in"] >= 6 and not any(stats[n] for n in REFUSED), stats
    # a spoofed datagram (B's address and port as source) is counted, in nepid status too
    ports = [recovered.get(b[c].guid, "tun_port") for c in ("chan_a", "chan_b")]
    spoof_udp(ports[1], ports[0], Sealer(WRONG_KEY, 1).seal(b"spoofed"))
    status = tunchannel_status(tmp_path, b["desc_a"].guid, "frames forged 1")
    assert "frames forged 1" in status, status
    recovered.stop()
    recovered.shutdown()
    assert key_leaks(tmp_path, keys.popitem()[1]) == []
    nepi_kit.assert_nothing_left(tmp_path)


def spoof_udp(source_port, port, payload):
    """Send ``payload`` to 127.0.0.1:port as if from 127.0.0.1:source_port (raw socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP) as raw:
        raw.sendto(struct.pack("!HHHH", source_port, port, 8 + len(payload), 0) + payload,
                   ("127.0.0.1", 0))


def tunchannel_status(root, testbed_guid, expected):
    """The ``tunchannels of testbed N`` line of ``nepid status``, polled until it shows
    ``expected`` (the datagram is counted asynchronously)."""
    prefix = "tunchannels of testbed %d: " % testbed_guid
    seen = []

    def shows():
        proc = nepid_command("status", "--root-dir", root)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        seen.append(next((text for text in proc.stdout.splitlines()
                          if text.startswith(prefix)), proc.stdout))
        return expected in seen[-1]
    wait_until(shows, 10, 0.2)
    return seen[-1]

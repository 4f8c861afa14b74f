"""TunChannel: forward frames between a local TUN/TAP fd (or socket) and a peer channel in
another testbed, over UDP or TCP, authenticated and encrypted.

A channel's UDP port or TCP listener can be reached by anyone on the host (or the
network): without authentication a stranger could inject frames into an experiment, or
take the TCP end's connection slot. So every frame is sealed with AES-256-GCM (the
``cryptography`` package; measured about twice as fast as ChaCha20-Poly1305 on hosts with
AES-NI) under a per-link key that the experiment controller makes and hands to both ends
in the cross data of its authenticated RPC (nepi.core.tunnels; never an attribute, so in
no XML). On the wire, a UDP datagram or a TCP record after a 4-byte length prefix::

    version (1) | kind (1: 0 data, 1 hello) | sender (4) | sequence (8) | ciphertext | tag (16)

The nonce is sender || sequence and the 14-byte header is the associated data. ``sender``
is the end's side (top bit; 0 for the end whose element guid is lower) and a random 31-bit
epoch drawn by each forwarder, so the two directions under the shared key, and a restarted
endpoint, never reuse a nonce; a frame reflected back to its sender fails. The receiver
keeps a REPLAY_WINDOW sliding bitmap per sender epoch. Over TCP a three-message hello
exchange (each end echoes the other's random challenge) proves that the peer holds the
key and is live rather than replaying a recorded session; the listener serves several
connections at once and closes any that does not complete it within HANDSHAKE_TIMEOUT,
so a stranger cannot hold the real peer out.

A frame above the device MTU + LINK_HEADERS + OVERHEAD is dropped, and a TCP length
prefix above that limit closes the connection (nothing is buffered for it). Forged,
replayed, malformed and oversized frames and refused connections are counted
(``counters()``, the element attribute ``tun_stats``); the first drop of each kind and a
summary every REPORT_INTERVAL go to the testbed log.

``tun_cipher`` (NEPI 2: AES, Blowfish, DES3, DES, PLAIN) must be the same on both ends;
every value but PLAIN selects the authenticated channel. PLAIN on both ends is the
documented opt-out: frames cross as they are, unauthenticated and unencrypted (the size
limit still applies), and a warning is logged.

The local endpoint (``bind``) outlives the peer: ``connect_peer`` may be called again
(the peer's testbed was restarted and published a new address) and replaces the running
forwarder, so a restarted testbed's channel is joined again by the surviving one.
Frames that cannot be delivered (peer gone, local device down or full) are dropped, as a
link would drop them; the forwarder keeps running.
"""

import collections
import errno
import logging
import os
import secrets
import select
import socket
import struct
import threading
import time
from typing import Dict, Optional, Tuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_logger = logging.getLogger("nepi.tunchannel")

PLAIN = "PLAIN"
VERSION = 1
DATA, HELLO = 0, 1
HEADER = struct.Struct("!BBIQ")       # version, kind, sender (side bit + epoch), sequence
TAG_SIZE = 16
OVERHEAD = HEADER.size + TAG_SIZE     # bytes added to each authenticated frame
LENGTH = struct.Struct("!I")          # TCP record prefix
DEFAULT_MTU = 1500
LINK_HEADERS = 32                     # Ethernet 14 + VLAN 4 + LLC/SNAP 8 + PI 4, rounded up
MAX_FRAME = DEFAULT_MTU + LINK_HEADERS + OVERHEAD   # the wire limit at the default MTU
READ_SIZE = 65535 + LINK_HEADERS      # local reads never truncate a frame
KEY_SIZE = 32
CHALLENGE = 16
REPLAY_WINDOW = 1024                  # sequence numbers remembered per sender epoch
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1
MAX_EPOCHS = 32                       # sender epochs remembered (the peer's forwarders)
BATCH = 64                 # frames moved per direction and wake-up
CONNECT_TIMEOUT = 30.0     # TCP: establishing the connection with the peer
HANDSHAKE_TIMEOUT = 5.0    # TCP: a connection must complete the hello exchange by then
REPORT_INTERVAL = 60.0     # seconds between log summaries of refused frames
COUNTERS = ("frames_in", "frames_out", "frames_dropped", "frames_forged", "frames_replayed",
            "frames_malformed", "frames_oversized", "connections_rejected")
REFUSED = COUNTERS[3:]     # what a stranger or a broken peer causes
LINK_KEYS = "_link_keys"   # cross data entry: {str(local guid): link key, hex}
PEER_HOST = "_host"        # cross data entry: the host the peer's testbed runs on
OWN_HOST = "_own_host"     # ... and the receiving testbed's (None: the controller's host)
STATS = "tun_stats"        # element attribute: the counters as "name=value ..."


class Dropped(Exception):
    """A frame or connection refused; ``counter`` is the counter it goes to."""

    def __init__(self, counter: str, reason: str) -> None:
        super().__init__(reason)
        self.counter = counter


class ReplayWindow:
    """Sequence numbers seen from one sender epoch: the highest and a bitmap of the
    REPLAY_WINDOW before it (anything older is refused: too old to tell)."""

    def __init__(self) -> None:
        self.top = -1
        self.bits = 0              # bit i set: sequence top - i was seen

    def fresh(self, seq: int) -> bool:
        if seq > self.top:
            return True
        offset = self.top - seq
        return offset < REPLAY_WINDOW and not (self.bits >> offset) & 1

    def mark(self, seq: int) -> None:
        if seq <= self.top:
            self.bits |= 1 << (self.top - seq)
            return
        shift = seq - self.top
        self.bits = ((self.bits << shift) | 1) & _WINDOW_MASK if shift < REPLAY_WINDOW else 1
        self.top = seq


class Sealer:
    """Seals one forwarder's frames: its own random epoch, sequence numbers from 0."""

    def __init__(self, key: bytes, side: int) -> None:
        self._aead = AESGCM(key)
        self.sender = (side << 31) | secrets.randbits(31)
        self._seq = 0

    def seal(self, payload: bytes, kind: int = DATA) -> bytes:
        header = HEADER.pack(VERSION, kind, self.sender, self._seq)
        self._seq += 1
        return header + self._aead.encrypt(header[2:], payload, header)


class PlainSealer:
    """tun_cipher PLAIN: frames cross as they are."""

    def seal(self, payload: bytes, kind: int = DATA) -> bytes:
        return payload


class Opener:
    """Accepts frames that authenticate under the key, come from the peer's side and were
    not seen before. ``pinned`` (TCP, after the hello exchange): one sender epoch only."""

    def __init__(self, key: bytes, peer_side: int, max_frame: int) -> None:
        self._aead = AESGCM(key)
        self.peer_side = peer_side
        self.max_frame = max_frame
        self.pinned: Optional[int] = None
        self._windows: "collections.OrderedDict[int, ReplayWindow]" = \
            collections.OrderedDict()
        self._last: Tuple[Optional[int], Optional[ReplayWindow]] = (None, None)

    def open(self, frame: bytes, kind: int = DATA) -> Tuple[int, bytes]:
        """(sender, payload) of an authentic, fresh frame of ``kind``; raise Dropped."""
        if len(frame) > self.max_frame:
            raise Dropped("frames_oversized", "%d bytes, above the %d-byte limit"
                          % (len(frame), self.max_frame))
        if len(frame) < OVERHEAD:
            raise Dropped("frames_malformed", "%d bytes, shorter than a header" % len(frame))
        version, got, sender, seq = HEADER.unpack_from(frame)
        if version != VERSION:
            raise Dropped("frames_malformed", "unknown version %d" % version)
        if sender >> 31 != self.peer_side:
            raise Dropped("frames_forged", "sent from this end's side (reflected)")
        last, window = self._last
        if sender != last:                       # not the usual peer forwarder
            window = self._windows.get(sender)
        if window is not None and not window.fresh(seq):
            raise Dropped("frames_replayed", "sequence %d seen before or too old" % seq)
        try:
            payload = self._aead.decrypt(frame[2:HEADER.size], frame[HEADER.size:],
                                         frame[:HEADER.size])
        except InvalidTag:
            raise Dropped("frames_forged", "does not authenticate with the link key") \
                from None
        if self.pinned is not None and sender != self.pinned:
            raise Dropped("frames_replayed", "authentic but from another session")
        if window is None:
            window = self._windows[sender] = ReplayWindow()
            while len(self._windows) > MAX_EPOCHS:
                self._windows.popitem(last=False)
        elif sender != last:
            self._windows.move_to_end(sender)
        self._last = (sender, window)
        window.mark(seq)
        if got != kind:
            raise Dropped("frames_malformed", "kind %d where %d was expected" % (got, kind))
        return sender, payload


class PlainOpener:
    """tun_cipher PLAIN: any frame within the size limit is taken."""

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame

    def open(self, frame: bytes, kind: int = DATA) -> Tuple[int, bytes]:
        if len(frame) > self.max_frame:
            raise Dropped("frames_oversized", "%d bytes, above the %d-byte limit"
                          % (len(frame), self.max_frame))
        if not frame:
            raise Dropped("frames_malformed", "empty frame")
        return 0, frame


class Records:
    """Splits a TCP byte stream into its length-prefixed frames (``frames``). A prefix
    above ``limit`` raises at once: no more than one frame is ever buffered."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.frames: "collections.deque[bytes]" = collections.deque()
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= LENGTH.size:
            size = LENGTH.unpack_from(buffer, start)[0]
            if size > self.limit:
                raise Dropped("frames_oversized", "length prefix %d above the %d-byte limit"
                              % (size, self.limit))
            end = start + LENGTH.size + size
            if len(buffer) < end:
                break
            self.frames.append(bytes(buffer[start + LENGTH.size:end]))
            start = end
        del buffer[:start]


def record(frame: bytes) -> bytes:
    """A frame as a TCP record."""
    return LENGTH.pack(len(frame)) + frame


def decode_key(key: Optional[str]) -> bytes:
    if not key:
        raise RuntimeError("no link key for this TunChannel: the experiment controller gives "
                           "one to both ends (tun_cipher PLAIN on both ends opts out)")
    try:
        raw = bytes.fromhex(key)
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != KEY_SIZE:
        raise RuntimeError("malformed TunChannel link key (expected %d hex digits)"
                           % (2 * KEY_SIZE))
    return raw


def parse_stats(text: Optional[str]) -> Dict[str, int]:
    """The counters of a ``tun_stats`` value."""
    counters = {}
    for item in (text or "").split():
        name, _, value = item.partition("=")
        if name in COUNTERS and value.isdigit():
            counters[name] = int(value)
    return counters


def _split_hello(payload: bytes) -> Tuple[bytes, bytes]:
    """(sender's challenge, echo of ours) of a hello."""
    if len(payload) != 2 * CHALLENGE:
        raise Dropped("frames_malformed", "hello of %d bytes" % len(payload))
    return payload[:CHALLENGE], payload[CHALLENGE:]


class TunChannel:
    def __init__(self, tun_fd: Optional[int] = None, mtu: Optional[int] = None) -> None:
        self.tun_fd = tun_fd            # local packet source: TAP/TUN fd or a socket fd
        self.mtu = mtu or DEFAULT_MTU   # of the local device: bounds the frames taken
        self.tun_socket: Optional[socket.socket] = None   # owned local socket, if any
        self.tun_proto: Optional[str] = None
        self.tun_addr: Optional[str] = None
        self.tun_port: Optional[int] = None
        self.tun_cipher = "AES"
        self.peer_addr: Optional[str] = None
        self.peer_port: Optional[int] = None
        self.peer_proto: Optional[str] = None
        self.peer_cipher: Optional[str] = None
        self._key: Optional[bytes] = None       # the link key; None: PLAIN
        self._side = 0                          # this end's side bit in the nonces
        self._max_payload = self.mtu + LINK_HEADERS
        self._max_frame = self._max_payload
        self._opener = None                     # UDP: replay windows outlive forwarders
        self._sock: Optional[socket.socket] = None        # UDP socket / TCP connection
        self._listener: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._run_stop = threading.Event()     # the current forwarder's stop flag
        self._closed = False
        self._connected = threading.Event()
        self._error: Optional[BaseException] = None
        self._lock = threading.Lock()
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0                # undeliverable (device full, peer away)
        self.frames_forged = 0
        self.frames_replayed = 0
        self.frames_malformed = 0
        self.frames_oversized = 0
        self.connections_rejected = 0
        self.connections = 0                   # forwarders started (1 + reconnections)
        self._reported = dict.fromkeys(REFUSED, 0)
        self._next_report = 0.0

    @property
    def label(self) -> str:
        return "TunChannel %s %s:%s" % (self.tun_proto, self.tun_addr, self.tun_port)

    def counters(self) -> Dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def stats_text(self) -> str:
        """The counters as ``name=value`` words (the ``tun_stats`` attribute)."""
        return " ".join("%s=%d" % item for item in self.counters().items())

    # -- set-up -------------------------------------------------------------------------

    def attach_socket(self, sock: socket.socket) -> None:
        """Use ``sock`` (e.g. one end of a socketpair) as the local packet source; the
        channel owns it from now on and closes it in close()."""
        sock.setblocking(False)
        self.tun_socket = sock
        self.tun_fd = sock.fileno()

    def bind(self, proto: str, address: str = "127.0.0.1", port: int = 0,
             advertise: Optional[str] = None) -> None:
        """Open the local endpoint now, so its address and port can be published. A port
        already in use (e.g. the one a restarted testbed had, read back from the execute
        XML) is replaced by a free one: the peer learns the port actually bound.
        ``advertise``: the address to publish instead of the bound one (a wildcard bind
        is reached at the host's name)."""
        if proto not in ("udp", "tcp"):
            raise ValueError("TunChannel protocol must be udp or tcp, not %r" % proto)
        try:
            self._bind(proto, address, port)
        except OSError as e:
            if not port or e.errno != errno.EADDRINUSE:
                raise
            _logger.info("TunChannel port %s/%d is in use: binding a free one", proto, port)
            self._bind(proto, address, 0)
        if advertise:
            self.tun_addr = advertise

    def _bind(self, proto: str, address: str, port: int) -> None:
        self.tun_proto = proto
        if proto == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 21)
            try:
                sock.bind((address, port))
            except OSError:
                sock.close()
                raise
            self._sock = sock
            self.tun_addr, self.tun_port = sock.getsockname()
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((address, port))
                listener.listen(16)    # strangers queueing do not hold out the peer
            except OSError:
                listener.close()
                raise
            self._listener = listener
            self.tun_addr, self.tun_port = listener.getsockname()

    def connect_peer(self, addr: str, port: int, proto: str, cipher: Optional[str],
                     key: Optional[str], side: Optional[int] = None) -> None:
        """Start forwarding to the peer (again, if it was already connected to one).

        ``key``: the link key both ends got from the controller (hex; unused with PLAIN).
        ``side``: this end's side bit, 0 or 1, the other end's being the other value (by
        default from the order of the two endpoints)."""
        if proto != self.tun_proto:
            raise RuntimeError("Peering protocol mismatch: %s != %s" % (self.tun_proto, proto))
        own = self.tun_cipher or "AES"
        if cipher and cipher != own:
            raise RuntimeError("TunChannel cipher mismatch: this end has tun_cipher %s, the "
                               "peer %s; set the same value on both ends (any but PLAIN "
                               "authenticates and encrypts; PLAIN on both opts out)"
                               % (own, cipher))
        if not addr or not port:
            raise RuntimeError("TunChannel peer has no address/port yet")
        if self.tun_fd is None:
            raise RuntimeError("TunChannel has no local device to forward")
        link_key = None if own == PLAIN else decode_key(key)
        if side is None:
            side = int((self.tun_addr, self.tun_port) > (addr, int(port)))
        if link_key is None and not self.connections:
            _logger.warning("%s: tun_cipher PLAIN on both ends: frames cross unauthenticated "
                            "and unencrypted, anyone reaching this port can inject frames",
                            self.label)
        with self._lock:
            if self._closed:
                raise RuntimeError("TunChannel is closed")
            self._stop_forwarder()
            self._max_payload = self.mtu + LINK_HEADERS
            self._max_frame = self._max_payload + (OVERHEAD if link_key else 0)
            if link_key is None:
                self._opener = PlainOpener(self._max_frame)
            elif (link_key, side) != (self._key, self._side) or \
                    not isinstance(self._opener, Opener):
                self._opener = Opener(link_key, 1 - side, self._max_frame)
            self._opener.max_frame = self._max_frame
            self._key, self._side = link_key, side
            self.peer_addr, self.peer_port, self.peer_proto = addr, int(port), proto
            self.peer_cipher = cipher
            self._run_stop = stop = threading.Event()
            self._connected = connected = threading.Event()
            self._error = None
            self.connections += 1
            self._thread = threading.Thread(target=self._run, args=(stop, connected),
                                            name="tunchannel", daemon=True)
            self._thread.start()

    def wait(self, timeout: float = CONNECT_TIMEOUT + 5) -> None:
        """Block until the forwarder is connected; raise what made it fail."""
        if not self._connected.wait(timeout):
            raise RuntimeError("TunChannel to %s:%s not connected after %.0f s"
                               % (self.peer_addr, self.peer_port, timeout))
        if self._error is not None:
            raise self._error

    @property
    def forwarding(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._connected.is_set() \
            and self._error is None

    # -- forwarding ---------------------------------------------------------------------

    def _stop_forwarder(self) -> None:
        """Stop the running forwarder (keeping the local endpoint); called with the lock."""
        thread = self._thread
        if thread is None:
            return
        self._run_stop.set()
        tcp_conn = self._sock if self.tun_proto == "tcp" else None
        if tcp_conn is not None:
            try:
                tcp_conn.shutdown(socket.SHUT_RDWR)     # wakes a blocked send/recv
            except OSError:
                pass
        if thread is not threading.current_thread():
            thread.join(5)
        self._thread = None
        if tcp_conn is not None:
            _close(tcp_conn)            # the connection to the old peer
            self._sock = None

    def _establish(self, stop: threading.Event, sealer) -> Tuple[socket.socket, object,
                                                                 Optional[Records]]:
        """(connection, opener, TCP records) with the peer."""
        if self.tun_proto == "udp":
            self._sock.connect((self.peer_addr, self.peer_port))
            return self._sock, self._opener, None
        # TCP: the end with the lower (addr, port) connects, the other accepts
        me, peer = (self.tun_addr, self.tun_port), (self.peer_addr, self.peer_port)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        if me < peer:
            sock, opener, records = self._connect(peer, stop, deadline, sealer)
        else:
            sock, opener, records = self._accept(stop, deadline, sealer)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return sock, opener, records

    def _tcp_opener(self):
        if self._key is None:
            return PlainOpener(self._max_frame)
        return Opener(self._key, 1 - self._side, self._max_frame)

    def _connect(self, peer: tuple, stop: threading.Event, deadline: float, sealer):
        """Connect to the peer's listener; with a key: answer its hello with ours and
        check that its second hello echoes our challenge."""
        while True:
            try:
                sock = socket.create_connection(peer, timeout=5)
            except OSError:
                if time.monotonic() > deadline or stop.is_set():
                    raise
                time.sleep(0.1)
                continue
            records, opener = Records(self._max_frame), self._tcp_opener()
            if self._key is None:
                return sock, opener, records
            try:
                until = time.monotonic() + HANDSHAKE_TIMEOUT
                theirs, _ = _split_hello(opener.open(
                    _next_record(sock, records, stop, until), HELLO)[1])
                mine = secrets.token_bytes(CHALLENGE)
                sock.sendall(record(sealer.seal(mine + theirs, HELLO)))
                sender, reply = opener.open(_next_record(sock, records, stop, until), HELLO)
                if _split_hello(reply)[1] != mine:
                    raise Dropped("frames_replayed", "its hello does not echo our challenge")
                opener.pinned = sender
                return sock, opener, records
            except Dropped as e:
                self._refuse(e, "the listener %s:%d" % peer, connection=True)
            except OSError:
                pass
            _close(sock)
            if time.monotonic() > deadline or stop.is_set():
                raise RuntimeError("TunChannel: no authenticated connection to %s:%d"
                                   % peer)
            time.sleep(0.1)

    def _accept(self, stop: threading.Event, deadline: float, sealer):
        """Accept the peer's connection. With a key, each connection gets our hello
        (with a fresh challenge) and must answer with a hello that authenticates and
        echoes it within HANDSHAKE_TIMEOUT; others are closed and counted, and the
        listener keeps accepting meanwhile."""
        listener = self._listener
        listener.settimeout(0.5)
        pending: Dict[socket.socket, tuple] = {}  # conn -> challenge, records, opener, until, addr
        try:
            while True:
                if stop.is_set():
                    raise RuntimeError("TunChannel: stopped while waiting for the peer")
                now = time.monotonic()
                if now > deadline:
                    raise RuntimeError("TunChannel: peer never connected")
                for conn in [c for c, p in pending.items() if p[3] < now]:
                    self._refuse(Dropped("connections_rejected", "no hello within %.0f s"
                                         % HANDSHAKE_TIMEOUT), _where(pending.pop(conn)[4]),
                                 connection=True)
                    _close(conn)
                for conn in select.select([listener] + list(pending), [], [], 0.5)[0]:
                    if conn is listener:
                        try:
                            conn, address = listener.accept()
                        except (socket.timeout, BlockingIOError):
                            continue
                        records, opener = Records(self._max_frame), self._tcp_opener()
                        if self._key is None:
                            return conn, opener, records      # PLAIN: the first comer
                        challenge = secrets.token_bytes(CHALLENGE)
                        try:
                            conn.settimeout(HANDSHAKE_TIMEOUT)
                            conn.sendall(record(sealer.seal(challenge + bytes(CHALLENGE),
                                                            HELLO)))
                        except OSError:
                            _close(conn)
                            continue
                        pending[conn] = (challenge, records, opener,
                                         time.monotonic() + HANDSHAKE_TIMEOUT, address)
                        continue
                    challenge, records, opener, _, address = pending[conn]
                    try:
                        data = conn.recv(READ_SIZE)
                        if not data:
                            raise Dropped("connections_rejected", "closed before its hello")
                        records.feed(data)
                        if not records.frames:
                            continue
                        sender, hello = opener.open(records.frames.popleft(), HELLO)
                        theirs, echo = _split_hello(hello)
                        if echo != challenge:
                            raise Dropped("frames_replayed",
                                          "its hello does not echo our challenge")
                        conn.sendall(record(sealer.seal(challenge + theirs, HELLO)))
                    except (Dropped, OSError) as e:
                        if not isinstance(e, Dropped):
                            e = Dropped("connections_rejected", "failed: %s" % e)
                        self._refuse(e, _where(address), connection=True)
                        del pending[conn]
                        _close(conn)
                        continue
                    del pending[conn]
                    opener.pinned = sender
                    return conn, opener, records
        finally:
            for conn in pending:
                _close(conn)

    def _refuse(self, error: Dropped, source: str, connection: bool = False) -> None:
        """Count a refused frame (and, ``connection``, the connection it came on); the
        first of each kind is logged, the rest go into the periodic summary."""
        counters = [error.counter]
        if connection and error.counter != "connections_rejected":
            counters.append("connections_rejected")
        for name in counters:
            setattr(self, name, getattr(self, name) + 1)
        if getattr(self, error.counter) == 1:
            _logger.warning("%s: refused a %s from %s: %s (counted in %s; further ones are "
                            "summarised every %.0f s)", self.label,
                            "connection" if connection else "frame", source, error,
                            error.counter, REPORT_INTERVAL)

    def _report(self, final: bool = False) -> None:
        """Every REPORT_INTERVAL (and at close), log the counters if frames were refused
        since the last report."""
        now = time.monotonic()
        if now < self._next_report and not final:
            return
        self._next_report = now + REPORT_INTERVAL
        refused = {name: getattr(self, name) for name in REFUSED}
        if refused != self._reported:
            self._reported = refused
            _logger.warning("%s (peer %s:%s): %s", self.label, self.peer_addr,
                            self.peer_port, self.stats_text())

    def _run(self, stop: threading.Event, connected: threading.Event) -> None:
        try:
            sealer = Sealer(self._key, self._side) if self._key else PlainSealer()
            sock, opener, records = self._establish(stop, sealer)
            connected.set()
            self._forward(sock, stop, sealer, opener, records)
        except BaseException as e:   # reported by wait() and in the log
            if not stop.is_set():
                self._error = e
                _logger.error("TunChannel forwarder failed: %s", e)
            connected.set()

    def _to_device(self, frame: bytes) -> None:
        try:
            os.write(self.tun_fd, frame)
            self.frames_in += 1
        except OSError as e:
            # full (non-blocking socket), interface down (EIO), reader gone: drop it
            if e.errno not in (errno.EAGAIN, errno.EIO, errno.ENOBUFS, errno.EPIPE,
                               errno.ECONNREFUSED, errno.EINVAL, errno.EMSGSIZE):
                raise
            self.frames_dropped += 1

    def _deliver(self, frame: bytes, opener) -> None:
        try:
            payload = opener.open(frame)[1]
        except Dropped as e:
            self._refuse(e, "%s:%s" % (self.peer_addr, self.peer_port))
            return
        self._to_device(payload)

    def _forward(self, sock: socket.socket, stop: threading.Event, sealer, opener,
                 records: Optional[Records]) -> None:
        tcp = records is not None
        tun_fd = self.tun_fd
        receive_size = READ_SIZE if tcp else self._max_frame + 1   # +1: tells oversized
        while not stop.is_set():
            readable, _, _ = select.select([tun_fd, sock], [], [], 0.5)
            if stop.is_set():
                return
            self._report()
            if tun_fd in readable:
                for _ in range(BATCH):
                    try:
                        frame = os.read(tun_fd, READ_SIZE)
                    except BlockingIOError:
                        break
                    if not frame:
                        if self.tun_socket is not None:
                            return         # the device closed its end of the socketpair
                        break
                    if len(frame) > self._max_payload:
                        self.frames_dropped += 1       # above the MTU the peer accepts
                    elif tcp:
                        sock.sendall(record(sealer.seal(frame)))
                        self.frames_out += 1
                    else:
                        try:
                            sock.send(sealer.seal(frame))
                            self.frames_out += 1
                        except OSError:
                            self.frames_dropped += 1   # peer not there (yet): a lost frame
                    if self.tun_socket is None:
                        break              # a TAP fd is blocking: one frame per wake-up
            if sock in readable:
                for k in range(BATCH):
                    try:
                        data = sock.recv(receive_size, socket.MSG_DONTWAIT if k else 0)
                    except BlockingIOError:
                        break
                    except ConnectionRefusedError:
                        break
                    except ConnectionResetError:
                        if tcp:
                            return
                        break
                    if not tcp:
                        self._deliver(data, opener)
                        continue
                    if not data:
                        return             # the peer closed: wait for a reconnection
                    try:
                        records.feed(data)
                    except Dropped as e:   # never buffer what the prefix claims
                        self._refuse(e, "%s:%s" % (self.peer_addr, self.peer_port),
                                     connection=True)
                        _close(sock)
                        return
                    while records.frames:
                        self._deliver(records.frames.popleft(), opener)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop_forwarder()
            self._report(final=True)
            for s in (self._sock, self._listener, self.tun_socket):
                if s is not None:
                    _close(s)
            self._sock = self._listener = None
            if self.tun_socket is not None:
                self.tun_socket = None
                self.tun_fd = None


def _next_record(sock: socket.socket, records: Records, stop: threading.Event,
                 until: float) -> bytes:
    """The next TCP record during the hello exchange (which must end by ``until``)."""
    while not records.frames:
        if stop.is_set():
            raise ConnectionAbortedError("stopped during the hello exchange")
        if time.monotonic() > until:
            raise socket.timeout("no hello within %.0f s" % HANDSHAKE_TIMEOUT)
        if select.select([sock], [], [], 0.5)[0]:
            data = sock.recv(READ_SIZE)
            if not data:
                raise ConnectionResetError("closed during the hello exchange")
            records.feed(data)
    return records.frames.popleft()


def _where(address) -> str:
    return "%s:%s" % tuple(address[:2]) if address else "?"


def link_key(cross_data: dict, guid: int) -> Optional[str]:
    """The key the controller delivered, in the peer's cross data, for its link with the
    local element ``guid``."""
    keys = cross_data.get(LINK_KEYS) or {}
    return keys.get(str(guid)) or keys.get(guid)


def endpoint_addresses(cross_data: dict) -> Tuple[str, Optional[str]]:
    """(address to bind, address to publish or None for the bound one) of a channel end
    whose peer ``cross_data`` describes. Both testbeds on one host: loopback. Otherwise
    the address this host reaches the peer's host from (the peer sees it as our source
    address), or, if the peer runs on the controller's host (whose address as seen from
    here is unknown), every address, published as the name the controller gave this
    testbed's host."""
    peer, own = cross_data.get(PEER_HOST), cross_data.get(OWN_HOST)
    if peer == own:
        return "127.0.0.1", None
    if peer is not None:
        local = source_address(peer)
        if local is not None:
            return local, None
    return "0.0.0.0", own


def source_address(host: str) -> Optional[str]:
    """The IPv4 address this host's routes use to reach ``host`` (None if unreachable or
    unresolvable). A connected UDP socket sends nothing."""
    try:
        address = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((address, 9))
            return probe.getsockname()[0]
    except OSError:
        return None


def connect_cross_peer(channel: TunChannel, guid: int, cross_data: dict,
                       proto: str) -> None:
    """Join the peer element described by ``cross_data`` with the controller's link key
    (netns and ns3 TunChannels alike): the end with the lower element guid is side 0."""
    peer_guid = cross_data.get("_guid")
    channel.connect_peer(cross_data.get("tun_addr"), cross_data.get("tun_port"),
                         cross_data.get("tun_proto") or proto, cross_data.get("tun_cipher"),
                         link_key(cross_data, guid),
                         None if peer_guid is None else int(int(guid) > int(peer_guid)))


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass

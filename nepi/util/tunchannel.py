"""TunChannel: forward frames between a local TUN/TAP fd (or socket) and a peer channel in
another testbed, over UDP or TCP.

Frames cross as datagrams (UDP) or length-prefixed records (TCP). Traffic is not
encrypted: ``tun_cipher`` is negotiated for NEPI 2 compatibility and both ends must
agree, but nepi's channels carry frames in the clear (they join testbeds on one host or
a trusted LAN); a warning is logged when a cipher other than PLAIN is asked for.

The local endpoint (``bind``) outlives the peer: ``connect_peer`` may be called again
(the peer's testbed was restarted and published a new address) and replaces the running
forwarder, so a restarted testbed's channel is joined again by the surviving one.
Frames that cannot be delivered (peer gone, local device down or full) are dropped, as a
link would drop them; the forwarder keeps running.
"""

import errno
import logging
import os
import secrets
import select
import socket
import struct
import threading
import time
from typing import Optional

_logger = logging.getLogger("nepi.tunchannel")

MAX_FRAME = 65535 + 64
BATCH = 64                 # frames moved per direction and wake-up
CONNECT_TIMEOUT = 30.0     # TCP: establishing the connection with the peer


class TunChannel:
    def __init__(self, tun_fd: Optional[int] = None) -> None:
        self.tun_fd = tun_fd            # local packet source: TAP/TUN fd or a socket fd
        self.tun_socket: Optional[socket.socket] = None   # owned local socket, if any
        self.tun_proto: Optional[str] = None
        self.tun_addr: Optional[str] = None
        self.tun_port: Optional[int] = None
        self.tun_key = secrets.token_hex(16)
        self.tun_cipher = "AES"
        self.peer_addr: Optional[str] = None
        self.peer_port: Optional[int] = None
        self.peer_proto: Optional[str] = None
        self.peer_cipher: Optional[str] = None
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
        self.frames_dropped = 0
        self.connections = 0                   # forwarders started (1 + reconnections)

    # -- set-up -------------------------------------------------------------------------

    def attach_socket(self, sock: socket.socket) -> None:
        """Use ``sock`` (e.g. one end of a socketpair) as the local packet source; the
        channel owns it from now on and closes it in close()."""
        sock.setblocking(False)
        self.tun_socket = sock
        self.tun_fd = sock.fileno()

    def bind(self, proto: str, address: str = "127.0.0.1", port: int = 0) -> None:
        """Open the local endpoint now, so its address and port can be published. A port
        already in use (e.g. the one a restarted testbed had, read back from the execute
        XML) is replaced by a free one: the peer learns the port actually bound."""
        if proto not in ("udp", "tcp"):
            raise ValueError("TunChannel protocol must be udp or tcp, not %r" % proto)
        try:
            self._bind(proto, address, port)
        except OSError as e:
            if not port or e.errno != errno.EADDRINUSE:
                raise
            _logger.info("TunChannel port %s/%d is in use: binding a free one", proto, port)
            self._bind(proto, address, 0)

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
                listener.listen(1)
            except OSError:
                listener.close()
                raise
            self._listener = listener
            self.tun_addr, self.tun_port = listener.getsockname()

    def connect_peer(self, addr: str, port: int, proto: str, cipher: Optional[str],
                     key: Optional[str]) -> None:
        """Start forwarding to the peer (again, if it was already connected to one)."""
        if proto != self.tun_proto:
            raise RuntimeError("Peering protocol mismatch: %s != %s" % (self.tun_proto, proto))
        if cipher and self.tun_cipher and cipher != self.tun_cipher:
            raise RuntimeError("Peering cipher mismatch: %s != %s" % (self.tun_cipher, cipher))
        if not addr or not port:
            raise RuntimeError("TunChannel peer has no address/port yet")
        if self.tun_fd is None:
            raise RuntimeError("TunChannel has no local device to forward")
        if key:
            self.tun_key = min(self.tun_key, key)
        if self.tun_cipher and self.tun_cipher != "PLAIN" and not self.connections:
            _logger.warning("tun_cipher %s requested: nepi's TunChannel carries frames "
                            "unencrypted", self.tun_cipher)
        with self._lock:
            if self._closed:
                raise RuntimeError("TunChannel is closed")
            self._stop_forwarder()
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

    def _establish(self, stop: threading.Event) -> socket.socket:
        if self.tun_proto == "udp":
            self._sock.connect((self.peer_addr, self.peer_port))
            return self._sock
        # TCP: the end with the lower (addr, port) connects, the other accepts
        me, peer = (self.tun_addr, self.tun_port), (self.peer_addr, self.peer_port)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        if me < peer:
            while True:
                try:
                    sock = socket.create_connection(peer, timeout=5)
                    break
                except OSError:
                    if time.monotonic() > deadline or stop.is_set():
                        raise
                    time.sleep(0.1)
        else:
            self._listener.settimeout(0.5)
            while True:
                try:
                    sock, _ = self._listener.accept()
                    break
                except socket.timeout:
                    if stop.is_set():
                        raise RuntimeError("TunChannel: stopped while waiting for the peer")
                    if time.monotonic() > deadline:
                        raise RuntimeError("TunChannel: peer never connected")
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return sock

    def _run(self, stop: threading.Event, connected: threading.Event) -> None:
        try:
            sock = self._establish(stop)
            connected.set()
            self._forward(sock, stop)
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

    def _forward(self, sock: socket.socket, stop: threading.Event) -> None:
        tcp = self.tun_proto == "tcp"
        buffer = b""
        tun_fd = self.tun_fd
        while not stop.is_set():
            readable, _, _ = select.select([tun_fd, sock], [], [], 0.5)
            if stop.is_set():
                return
            if tun_fd in readable:
                for _ in range(BATCH):
                    try:
                        frame = os.read(tun_fd, MAX_FRAME)
                    except BlockingIOError:
                        break
                    if not frame:
                        if self.tun_socket is not None:
                            return         # the device closed its end of the socketpair
                        break
                    if tcp:
                        sock.sendall(struct.pack("!I", len(frame)) + frame)
                    else:
                        try:
                            sock.send(frame)
                        except (ConnectionRefusedError, BlockingIOError, OSError):
                            self.frames_dropped += 1   # peer not there (yet): a lost frame
                            continue
                    self.frames_out += 1
                    if self.tun_socket is None:
                        break              # a TAP fd is blocking: one frame per wake-up
            if sock in readable:
                for k in range(BATCH):
                    try:
                        data = sock.recv(MAX_FRAME + 4, socket.MSG_DONTWAIT if k else 0)
                    except BlockingIOError:
                        break
                    except ConnectionRefusedError:
                        break
                    except ConnectionResetError:
                        if tcp:
                            return
                        break
                    if tcp:
                        if not data:
                            return         # the peer closed: wait for a reconnection
                        buffer += data
                        while len(buffer) >= 4:
                            size = struct.unpack("!I", buffer[:4])[0]
                            if len(buffer) < 4 + size:
                                break
                            self._to_device(buffer[4:4 + size])
                            buffer = buffer[4 + size:]
                    elif data:
                        self._to_device(data)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop_forwarder()
            for s in (self._sock, self._listener, self.tun_socket):
                if s is not None:
                    _close(s)
            self._sock = self._listener = None
            if self.tun_socket is not None:
                self.tun_socket = None
                self.tun_fd = None


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass

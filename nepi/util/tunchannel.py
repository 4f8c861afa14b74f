"""TunChannel: forward frames between a local TUN/TAP fd (or socket) and a peer channel in
another testbed, over UDP or TCP.

Frames cross as datagrams (UDP) or length-prefixed records (TCP). Traffic is not
encrypted: ``tun_cipher`` is negotiated for NEPI 2 compatibility and both ends must
agree, but nepi's channels carry frames in the clear (they join testbeds on one host or
a trusted LAN); a warning is logged when a cipher other than PLAIN is asked for.
"""

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


class TunChannel:
    def __init__(self, tun_fd: Optional[int] = None) -> None:
        self.tun_fd = tun_fd            # local packet source: TAP/TUN fd or a socket fd
        self.tun_proto: Optional[str] = None
        self.tun_addr: Optional[str] = None
        self.tun_port: Optional[int] = None
        self.tun_key = secrets.token_hex(16)
        self.tun_cipher = "AES"
        self.peer_addr: Optional[str] = None
        self.peer_port: Optional[int] = None
        self.peer_proto: Optional[str] = None
        self.peer_cipher: Optional[str] = None
        self._sock: Optional[socket.socket] = None
        self._listener: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._error: Optional[BaseException] = None
        self.frames_in = 0
        self.frames_out = 0

    # -- set-up -------------------------------------------------------------------------

    def bind(self, proto: str, address: str = "127.0.0.1", port: int = 0) -> None:
        """Open the local endpoint now, so its address and port can be published."""
        self.tun_proto = proto
        if proto == "udp":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((address, port))
            self._sock = sock
            self.tun_addr, self.tun_port = sock.getsockname()
        elif proto == "tcp":
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((address, port))
            listener.listen(1)
            self._listener = listener
            self.tun_addr, self.tun_port = listener.getsockname()
        else:
            raise ValueError("TunChannel protocol must be udp or tcp, not %r" % proto)

    def connect_peer(self, addr: str, port: int, proto: str, cipher: Optional[str],
                     key: Optional[str]) -> None:
        if proto != self.tun_proto:
            raise RuntimeError("Peering protocol mismatch: %s != %s" % (self.tun_proto, proto))
        if cipher and self.tun_cipher and cipher != self.tun_cipher:
            raise RuntimeError("Peering cipher mismatch: %s != %s" % (self.tun_cipher, cipher))
        if not addr or not port:
            raise RuntimeError("TunChannel peer has no address/port yet")
        if key:
            self.tun_key = min(self.tun_key, key)
        if self.tun_cipher and self.tun_cipher != "PLAIN":
            _logger.warning("tun_cipher %s requested: nepi's TunChannel carries frames "
                            "unencrypted", self.tun_cipher)
        self.peer_addr, self.peer_port, self.peer_proto = addr, int(port), proto
        self._thread = threading.Thread(target=self._run, name="tunchannel", daemon=True)
        self._thread.start()

    def wait(self, timeout: float = 30.0) -> None:
        if not self._connected.wait(timeout):
            raise RuntimeError("TunChannel to %s:%s not connected after %.0f s"
                               % (self.peer_addr, self.peer_port, timeout))
        if self._error is not None:
            raise self._error

    # -- forwarding ---------------------------------------------------------------------

    def _establish(self) -> socket.socket:
        if self.tun_proto == "udp":
            self._sock.connect((self.peer_addr, self.peer_port))
            return self._sock
        # TCP: the end with the lower (addr, port) connects, the other accepts
        me, peer = (self.tun_addr, self.tun_port), (self.peer_addr, self.peer_port)
        deadline = time.monotonic() + 30
        if me < peer:
            while True:
                try:
                    sock = socket.create_connection(peer, timeout=5)
                    break
                except OSError:
                    if time.monotonic() > deadline or self._stop.is_set():
                        raise
                    time.sleep(0.1)
        else:
            self._listener.settimeout(1.0)
            while True:
                try:
                    sock, _ = self._listener.accept()
                    break
                except socket.timeout:
                    if time.monotonic() > deadline or self._stop.is_set():
                        raise RuntimeError("TunChannel: peer never connected")
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return sock

    def _run(self) -> None:
        try:
            sock = self._establish()
            self._connected.set()
            self._forward(sock)
        except BaseException as e:   # reported by wait() and in the log
            self._error = e
            self._connected.set()
            if not self._stop.is_set():
                _logger.error("TunChannel forwarder failed: %s", e)

    def _forward(self, sock: socket.socket) -> None:
        tcp = self.tun_proto == "tcp"
        buffer = b""
        while not self._stop.is_set():
            readable, _, _ = select.select([self.tun_fd, sock], [], [], 0.5)
            if self.tun_fd in readable:
                frame = os.read(self.tun_fd, MAX_FRAME)
                if frame:
                    if tcp:
                        sock.sendall(struct.pack("!I", len(frame)) + frame)
                    else:
                        try:
                            sock.send(frame)
                        except ConnectionRefusedError:
                            pass   # peer not listening yet: drop, as a link would
                    self.frames_out += 1
            if sock in readable:
                try:
                    data = sock.recv(MAX_FRAME + 4)
                except ConnectionRefusedError:
                    continue
                if tcp:
                    if not data:
                        return
                    buffer += data
                    while len(buffer) >= 4:
                        size = struct.unpack("!I", buffer[:4])[0]
                        if len(buffer) < 4 + size:
                            break
                        os.write(self.tun_fd, buffer[4:4 + size])
                        buffer = buffer[4 + size:]
                        self.frames_in += 1
                elif data:
                    os.write(self.tun_fd, data)
                    self.frames_in += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(3)
        for s in (self._sock, self._listener):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

"""Commands run inside a node of a live experiment (``nepid exec`` / ``nepid shell``),
driven over RPC in small steps: start, then read what it printed (waiting a little for
more), write to its input, close. A testbed makes the process; this keeps it, reads its
output on threads so nothing blocks, and forgets it once it ended and everything was read.

Output crosses RPC as base64 text (serpent carries text safely)."""

import base64
import itertools
import os
import subprocess
import threading
from typing import Dict, Optional

READ_SIZE = 65536
MAX_BUFFERED = 4 << 20      # per stream: a client that stops reading cannot fill memory


class _Session:
    def __init__(self, proc: subprocess.Popen, master_fd: Optional[int]) -> None:
        self.proc = proc
        self.master_fd = master_fd          # a pty's master: output and input both
        self.buffers = {"stdout": bytearray(), "stderr": bytearray()}
        self.changed = threading.Condition()
        self.open_streams = 0
        sources = [("stdout", master_fd)] if master_fd is not None else [
            ("stdout", proc.stdout.fileno()), ("stderr", proc.stderr.fileno())]
        for name, fd in sources:
            self.open_streams += 1
            threading.Thread(target=self._pump, args=(name, fd), daemon=True,
                             name="nepi-exec-%s" % name).start()

    def _pump(self, name: str, fd: int) -> None:
        try:
            while True:
                try:
                    chunk = os.read(fd, READ_SIZE)
                except OSError:            # a pty's master reads EIO once the child is gone
                    chunk = b""
                if not chunk:
                    return
                with self.changed:
                    buffer = self.buffers[name]
                    buffer += chunk
                    del buffer[:max(0, len(buffer) - MAX_BUFFERED)]
                    self.changed.notify_all()
        finally:
            with self.changed:
                self.open_streams -= 1
                self.changed.notify_all()

    def finished(self) -> bool:
        return self.open_streams == 0 and self.proc.poll() is not None


class ExecSessions:
    """The exec sessions of one testbed controller, by number."""

    def __init__(self) -> None:
        self._sessions: Dict[int, _Session] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, proc: subprocess.Popen, master_fd: Optional[int] = None) -> int:
        with self._lock:
            number = next(self._numbers)
            self._sessions[number] = _Session(proc, master_fd)
        return number

    def _get(self, number: int) -> _Session:
        session = self._sessions.get(int(number))
        if session is None:
            raise KeyError("no exec session %s (it ended and was read, or never existed)"
                           % number)
        return session

    def read(self, number: int, wait: float = 0.5) -> dict:
        """What the command printed since the last read (``stdout``/``stderr``, base64),
        waiting up to ``wait`` seconds for something; ``exit`` is its status once it ended
        and all its output was read (the session is then forgotten), else None."""
        session = self._get(number)
        with session.changed:
            session.changed.wait_for(
                lambda: any(session.buffers.values()) or session.finished(),
                timeout=max(0.0, min(float(wait), 10.0)))
            out = {name: base64.b64encode(bytes(buf)).decode("ascii")
                   for name, buf in session.buffers.items()}
            for buf in session.buffers.values():
                buf.clear()
            done = session.finished()
        if not done:
            return dict(out, exit=None)
        self._forget(number)
        return dict(out, exit=session.proc.returncode)

    def write(self, number: int, data: str) -> None:
        """Feed base64 ``data`` to the command's input; an empty string closes it."""
        session = self._get(number)
        raw = base64.b64decode(data.encode("ascii"))
        if session.master_fd is not None:
            if raw:
                os.write(session.master_fd, raw)
            else:
                os.write(session.master_fd, b"\x04")       # EOF on a terminal: ^D
            return
        if raw:
            session.proc.stdin.write(raw)
            session.proc.stdin.flush()
        else:
            session.proc.stdin.close()

    def resize(self, number: int, rows: int, cols: int) -> None:
        import fcntl
        import struct
        import termios
        session = self._get(number)
        if session.master_fd is not None:
            fcntl.ioctl(session.master_fd, termios.TIOCSWINSZ,
                        struct.pack("HHHH", int(rows), int(cols), 0, 0))

    def close(self, number: int) -> None:
        """End the command (its process group: SIGTERM, then SIGKILL) and forget it."""
        session = self._sessions.get(int(number))
        if session is not None:
            _end(session.proc)
            self._forget(number)

    def close_all(self) -> None:
        for number in list(self._sessions):
            self.close(number)

    def _forget(self, number: int) -> None:
        with self._lock:
            session = self._sessions.pop(int(number), None)
        if session is not None and session.master_fd is not None:
            try:
                os.close(session.master_fd)
            except OSError:
                pass


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 15)
        proc.wait(2)
    except (OSError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, 9)
        except OSError:
            pass
        proc.wait(2)


def spawn(argv, pty: bool, rows: int = 24, cols: int = 80, **popen) -> tuple:
    """Start ``argv`` in its own session: with ``pty``, on a new pseudo-terminal of
    ``rows`` x ``cols`` (its controlling terminal), else with pipes. (Popen, master fd or
    None); ``popen``: more Popen arguments (env, cwd, preexec_fn...)."""
    if not pty:
        proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                close_fds=True, **popen)
        return proc, None
    import fcntl
    import struct
    import termios
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    inner = popen.pop("preexec_fn", None)

    def child():
        if inner is not None:
            inner()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)        # after setsid: our terminal

    try:
        proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True, close_fds=True, preexec_fn=child,
                                **popen)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return proc, master

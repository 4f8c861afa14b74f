"""A pid file guarded by flock: the kernel drops the lock when the process dies, so a
stale file can never pretend a daemon is alive. Usable as python-daemon's ``pidfile``."""

import errno
import fcntl
import os
from typing import Optional


class AlreadyRunning(RuntimeError):
    pass


class PidLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise AlreadyRunning("another daemon (pid %s) holds %s"
                                     % (read_pid(self.path) or "?", self.path)) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None

    def rewrite_pid(self) -> None:
        """After python-daemon has forked, record the daemon's own pid."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, b"%d\n" % os.getpid())

    def __enter__(self) -> "PidLock":
        if self._fd is None:
            self.acquire()
        else:
            self.rewrite_pid()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_pid(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def is_locked(path: str) -> bool:
    """True if a live process holds the lock on ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def wait_unlocked(path: str, timeout: float = 5.0) -> bool:
    """A killed daemon's lock is released only once all its threads are gone: give the
    kernel a moment. True once nobody holds ``path``."""
    import time
    deadline = time.monotonic() + timeout
    while is_locked(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True

"""Named network namespaces without helper processes.

A namespace is created the way ``ip netns add`` does it, but from a worker thread of
this process: unshare(CLONE_NEWNET) in that thread, bind-mount the thread's namespace
onto /run/netns/NAME, return to the original namespace. Entering a namespace is a
per-thread setns, so many can be worked on in parallel. See
../shared/notes/netns-performance.md for why this beats forking per namespace.
"""

import concurrent.futures
import ctypes
import errno
import os
from contextlib import contextmanager
from typing import Iterable, Iterator, List

NETNS_RUN_DIR = "/run/netns"
UMOUNT_WORKERS = 16     # concurrent umounts share the kernel's RCU grace periods
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def ns_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


def _ensure_run_dir() -> None:
    """/run/netns must exist (and, like iproute2 does, be a shared mount point)."""
    os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)


def setns_fd(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def create(name: str) -> None:
    """Create the named namespace (from the calling thread; it stays where it was)."""
    _ensure_run_dir()
    path = ns_path(name)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    os.close(fd)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND,
                               None), "bind mount of %s" % path)
        finally:
            setns_fd(own)
    except BaseException:
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    finally:
        os.close(own)


def remove(name: str) -> None:
    path = ns_path(name)
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, "umount %s: %s" % (path, os.strerror(err)))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_many(names: Iterable[str]) -> None:
    """Remove many namespaces at once. Each umount waits for an RCU grace period (~1 ms);
    issued from many threads they wait for the same ones."""
    names = list(names)
    if not names:
        return
    with concurrent.futures.ThreadPoolExecutor(min(UMOUNT_WORKERS, len(names))) as pool:
        list(pool.map(remove, names))


def exists(name: str) -> bool:
    return os.path.exists(ns_path(name))


def list_namespaces(prefix: str = "") -> List[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_RUN_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside namespace ``name``."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        fd = os.open(ns_path(name), os.O_RDONLY)
        try:
            setns_fd(fd)
        finally:
            os.close(fd)
        try:
            yield
        finally:
            setns_fd(own)
    finally:
        os.close(own)


def ns_inode(name: str) -> int:
    return os.stat(ns_path(name)).st_ino


def pids_in(name: str) -> List[int]:
    """Processes whose network namespace is ``name`` (to kill what was left inside)."""
    return pids_in_any([name])


def pids_in_any(names: Iterable[str]) -> List[int]:
    """Processes whose network namespace is one of ``names``: one pass over /proc
    however many namespaces are asked about."""
    inodes = set()
    for name in names:
        try:
            inodes.add(ns_inode(name))
        except FileNotFoundError:
            pass
    if not inodes:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat("/proc/%s/ns/net" % entry).st_ino in inodes:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def write_sysctl(path: str, value: str) -> None:
    """Write a /proc/sys value as seen from the calling thread's namespace."""
    with open(path, "w") as f:
        f.write(value)

"""Owner-only runtime directories, per-daemon secrets and socket placement."""

import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from typing import List, Optional

from nepi.util import rootfiles

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


def ensure_private_dir(path: str) -> str:
    """Create ``path`` (mode 0700), or check that an existing one is ours and private.

    An existing directory is never chmod-ed: nepi does not change the mode of what it
    did not create, so a directory others can enter is refused with a clear error."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        os.mkdir(path, 0o700)
        return path
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionError("%s exists and is not a directory" % path)
    if st.st_uid != os.getuid():
        raise PermissionError("%s belongs to uid %d, not to us (uid %d)"
                              % (path, st.st_uid, os.getuid()))
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise PermissionError("%s already exists with mode %04o: nepi keeps sockets and "
                              "secrets only in a private (0700) directory it made itself; "
                              "remove it or choose another root directory"
                              % (path, stat.S_IMODE(st.st_mode)))
    return path


# What a daemon's run/ directory may hold; anything else is someone else's.
RUN_DIR_NAMES = (rootfiles.SECRET, rootfiles.READY_RECORD,
                 rootfiles.NEPID_NAME + rootfiles.SOCKET_SUFFIX,
                 rootfiles.TESTBED_NAME + rootfiles.SOCKET_SUFFIX)


def check_run_dir(path: str) -> None:
    """Refuse a run/ directory holding files nepi does not make there: nepi overwrites
    and deletes its runtime files, and must never do so to someone else's."""
    foreign = sorted(name for name in os.listdir(path)
                     if name not in RUN_DIR_NAMES
                     and not name.startswith("." + rootfiles.READY_RECORD + "."))
    if foreign:
        raise PermissionError("%s holds files nepi did not create (%s): refusing to use it "
                              "for sockets and secrets; choose another root directory"
                              % (path, ", ".join(foreign[:5]) +
                                 (", ..." if len(foreign) > 5 else "")))


def runtime_base() -> str:
    configured = os.environ.get("NEPI_SOCKET_DIR")
    if configured:
        return ensure_private_dir(configured)
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.path.isdir(base):
        base = "/run/user/%d" % os.getuid() if os.path.isdir("/run/user/%d" % os.getuid()) \
            else tempfile.gettempdir()
    return base


def _short_dir(run_dir: str) -> str:
    digest = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:16]
    return os.path.join(runtime_base(), "nepi-%d-%s" % (os.getuid(), digest))


def socket_path(run_dir: str, name: str) -> str:
    """``run_dir/name``, or a short owner-only directory keyed by a hash of run_dir when
    that path would not fit in a Unix socket address."""
    path = os.path.join(run_dir, name)
    if len(path.encode()) <= MAX_SOCKET_PATH:
        return path
    return os.path.join(ensure_private_dir(_short_dir(run_dir)), name)


def socket_path_candidates(run_dir: str, name: str) -> List[str]:
    """Where a daemon's socket may be (computed without creating anything)."""
    return [os.path.join(run_dir, name), os.path.join(_short_dir(run_dir), name)]


def create_secret(path: str) -> str:
    """A fresh random secret in a new 0600 file. Called with the daemon's pid lock held,
    in a private run/ that holds only nepi's files: a secret already there is a dead
    daemon's of this same root and is replaced (never followed if it is a link)."""
    token = secrets.token_hex(32)
    if os.path.lexists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


def read_secret(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def secrets_match(supplied: Optional[str], expected: str) -> bool:
    return isinstance(supplied, str) and hmac.compare_digest(supplied.encode(),
                                                             expected.encode())

"""Owner-only runtime directories, per-daemon secrets and socket placement."""

import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from typing import Optional

# sockaddr_un.sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


def ensure_private_dir(path: str) -> str:
    """Create ``path`` (mode 0700) or check that an existing one is ours and private."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionError("%s exists and is not a directory" % path)
    if st.st_uid != os.getuid():
        raise PermissionError("%s belongs to uid %d, not to us (uid %d)"
                              % (path, st.st_uid, os.getuid()))
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def runtime_base() -> str:
    configured = os.environ.get("NEPI_SOCKET_DIR")
    if configured:
        return ensure_private_dir(configured)
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base or not os.path.isdir(base):
        base = "/run/user/%d" % os.getuid() if os.path.isdir("/run/user/%d" % os.getuid()) \
            else tempfile.gettempdir()
    return base


def socket_path(run_dir: str, name: str) -> str:
    """``run_dir/name``, or a short owner-only directory keyed by a hash of run_dir when
    that path would not fit in a Unix socket address."""
    path = os.path.join(run_dir, name)
    if len(path.encode()) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:16]
    short = ensure_private_dir(os.path.join(runtime_base(), "nepi-%d-%s" % (os.getuid(),
                                                                           digest)))
    return os.path.join(short, name)


def create_secret(path: str) -> str:
    """A fresh random secret in a 0600 file."""
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.chmod(path, 0o600)
    return token


def read_secret(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def secrets_match(supplied: Optional[str], expected: str) -> bool:
    return isinstance(supplied, str) and hmac.compare_digest(supplied.encode(),
                                                             expected.encode())

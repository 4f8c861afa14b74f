"""Files between the controller and a host, as tar streams through ssh's stdin/stdout
(argv lists, no local shell): an element's sources up, traces down.

Sources are local paths chosen by whoever runs the experiment. What is copied is what
lies in each named tree: regular files, folders, and symbolic links that stay inside
the tree (kept as links). Nothing is followed out of a tree; devices, fifos and sockets
are skipped. Setuid/setgid bits and ownership are dropped.
"""

import io
import logging
import os
import shlex
import stat
import subprocess
import tarfile
import tempfile
from typing import Dict, List, Optional

from nepi.testbeds.linux.remote import RESERVED
from nepi.testbeds.linux.ssh import CommandFailed, Ssh, Unreachable

_logger = logging.getLogger("nepi.testbeds.linux")

CHUNK = 1 << 16


def parse_sources(text: Optional[str]) -> List[str]:
    """The paths of a ``sources`` value (space-separated; shell-style quotes allowed for
    paths with spaces), made absolute against the current directory."""
    return [os.path.abspath(os.path.expanduser(p)) for p in shlex.split(text or "")]


def source_problems(paths: List[str]) -> List[str]:
    """What keeps ``paths`` from being copied (empty if nothing)."""
    problems, names = [], {}
    for path in paths:
        name = os.path.basename(path.rstrip(os.sep))
        if not os.path.exists(path):
            problems.append("%s does not exist" % path)
        elif not (os.path.isfile(path) or os.path.isdir(path)):
            problems.append("%s is neither a file nor a folder" % path)
        elif name in RESERVED:
            problems.append("%s would overwrite the application's own %r file" % (path, name))
        elif name in names:
            problems.append("%s and %s would both arrive as %r" % (names[name], path, name))
        names[name] = path
    return problems


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode) & 0o1777        # no setuid/setgid
    info.mtime = int(st.st_mtime)
    return info


def _add_file(tar: tarfile.TarFile, path: str, name: str) -> None:
    """A regular file, opened without following a link swapped in since it was listed."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            _logger.warning("sources: %s is no longer a regular file; not copied", path)
            return
        info = _info(name, st)
        info.size = st.st_size
        tar.addfile(info, f)


def _add_tree(tar: tarfile.TarFile, path: str, name: str, root: str) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        if os.path.isabs(target) or not _inside(os.path.realpath(path), root):
            _logger.warning("sources: %s -> %s points out of %s; not copied", path, target,
                            root)
            return
        info = _info(name, st)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mode = 0o777
        tar.addfile(info)
    elif stat.S_ISDIR(st.st_mode):
        info = _info(name, st)
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for entry in sorted(os.listdir(path)):
            _add_tree(tar, os.path.join(path, entry), name + "/" + entry, root)
    elif stat.S_ISREG(st.st_mode):
        _add_file(tar, path, name)
    else:
        _logger.warning("sources: %s is not a regular file or folder; not copied", path)


def write_tar(fileobj, sources: List[str], stdin_text: Optional[str]) -> None:
    """A tar stream of ``sources`` (each under its own name) and, if given, the
    ``stdin`` file."""
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for path in sources:
            # the named path itself was chosen by the user: a link there is followed
            root = os.path.realpath(path)
            name = os.path.basename(path.rstrip(os.sep))
            if os.path.isdir(root):
                _add_tree(tar, root, name, root)
            else:
                _add_file(tar, root, name)
        if stdin_text is not None:
            data = stdin_text.encode("utf-8")
            info = tarfile.TarInfo("stdin")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


def upload(ssh: Ssh, command: str, sources: List[str], stdin_text: Optional[str],
           timeout: float) -> None:
    """Stream sources (and stdin) into ``command`` (which extracts them) on the host."""
    with tempfile.TemporaryFile() as err:
        proc = ssh.popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=err)
        try:
            try:
                write_tar(proc.stdin, sources, stdin_text)
            except BrokenPipeError:
                pass                  # the remote side ended: its status says why
            finally:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise Unreachable(str(ssh.spec), "copying sources took more than %g s"
                              % timeout) from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err.seek(0)
        ssh.check(status, b"", err.read())


def fetch(ssh: Ssh, command: str, wanted: Dict[str, str], timeout: float) -> List[str]:
    """Run ``command`` (a tar stream of files on the host) and write each member named in
    ``wanted`` (name -> local path) to its local path, atomically. The local paths
    written; a file the host did not have is left as it was."""
    written = []
    with tempfile.TemporaryFile() as err:
        proc = ssh.popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=err)
        try:
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                    for member in tar:
                        local = wanted.get(member.name)
                        if local is None or not member.isreg():
                            continue
                        _write_local(local, tar.extractfile(member))
                        written.append(local)
            except tarfile.ReadError:
                if written:
                    raise
                # an empty stream (no such file on the host) or a failure: status says
            proc.stdout.close()
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise Unreachable(str(ssh.spec), "no answer within %g s" % timeout) from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err.seek(0)
        try:
            ssh.check(status, b"", err.read())
        except CommandFailed as e:
            if e.status != 1:            # 1: a file grew while tar read it (still whole)
                raise
    return written


def _write_local(path: str, source) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = source.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

"""Entry point of every nepi daemon process (``python -m nepi.rpc.daemon_main ROLE``).

Takes the pid lock *before* detaching (so a second start fails in the foreground with a
clear message), detaches with python-daemon, builds the payload, binds the secured socket,
then announces readiness by writing its record; every file it created is removed on exit.
"""

import argparse
import logging
import os
import signal
import ssl
import sys
import threading
import traceback
from typing import NamedTuple, Optional

import daemon as python_daemon

from nepi.core.launcher import build_testbed_controller
from nepi.core.manifest import EC_KEY, Manifest
from nepi.rpc import zygote
from nepi.rpc.launcher import LAUNCHED_BY
from nepi.rpc.layout import ROLE_EC, ROLE_TESTBED, DaemonLayout
from nepi.rpc.liveness import process_start_time
from nepi.rpc.pidlock import AlreadyRunning, PidLock
from nepi.rpc.security import check_run_dir, create_secret, ensure_private_dir
from nepi.rpc.server import make_unix_daemon, serve, write_ready_record
from nepi.util.files import read_json
from nepi.util.logfile import log_to_file



def idle_seconds() -> float:
    """Read when serving starts, not at import: a daemon forked from a preloaded process
    gets its environment after the import."""
    return float(os.environ.get("NEPI_DAEMON_IDLE", "600"))


def _parse(argv):
    parser = argparse.ArgumentParser(prog="nepi-daemon")
    parser.add_argument("role", choices=[ROLE_EC, ROLE_TESTBED])
    parser.add_argument("--root-dir", required=True)
    parser.add_argument("--foreground", action="store_true")
    parser.add_argument("--log-level", default="Error")
    parser.add_argument("--log-file")
    parser.add_argument("--testbed-id")
    parser.add_argument("--testbed-version")
    parser.add_argument("--testbed-guid", type=int)
    parser.add_argument("--owner", help="the experiment id of the root dir that launched "
                        "this daemon, kept in its record so cleanup knows it as its own")
    parser.add_argument("--allow-root", action="append", default=[], metavar="PATH",
                        help="ec: a place outside the root dir where testbeds may keep files")
    parser.add_argument("--preload", default="", metavar="IDS",
                        help="ec: testbed ids (comma-separated) whose daemons will be asked "
                             "for first: their modules are loaded before the others'")
    parser.add_argument("--recover", action="store_true",
                        help="ec: recover the experiment found in the root dir")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="ec: also serve remote clients on TCP with mutual TLS "
                             "(remembered in ROOT/listen.json for restarts)")
    parser.add_argument("--tls-dir", help="ec: the `nepid certs` directory for --listen")
    parser.add_argument("--no-listen", action="store_true",
                        help="ec: forget a remembered --listen")
    return parser.parse_args(argv)


class _Listen(NamedTuple):
    host: str
    port: int
    tls_dir: str
    context: ssl.SSLContext


def _listen_settings(args, layout) -> Optional[_Listen]:
    """nepid's TLS listener: from --listen/--tls-dir, else the one remembered in the root
    dir (unless --no-listen). Certificates are loaded now, before detaching, so that a
    problem is reported on the command line."""
    from nepi.rpc.tls import TlsError, load_listen, parse_address, server_context
    if args.role != ROLE_EC:
        if args.listen or args.tls_dir:
            raise TlsError("only nepid (the ec daemon) listens on TCP")
        return None
    if bool(args.listen) != bool(args.tls_dir):
        raise TlsError("--listen and --tls-dir go together")
    if args.listen:
        address, tls_dir = args.listen, args.tls_dir
    else:
        saved = None if args.no_listen else load_listen(layout.root_dir)
        if saved is None:
            return None
        address, tls_dir = saved["listen"], saved["tls_dir"]
    host, port = parse_address(address)
    tls_dir = os.path.abspath(tls_dir)
    return _Listen(host, port, tls_dir, server_context(tls_dir))


def _build_service(args, layout):
    if args.role == ROLE_TESTBED:
        from nepi.rpc.testbed_service import TestbedService
        controller = build_testbed_controller(args.testbed_id, args.testbed_version,
                                              in_daemon=True)
        return TestbedService(controller, args.testbed_guid), {
            "testbed_guid": args.testbed_guid, "testbed_id": args.testbed_id}
    from nepi.rpc.ec_service import ExperimentService
    service = ExperimentService(layout.root_dir, args.allow_root)
    return service, {"root_dir": layout.root_dir}


def run(args) -> int:
    layout = DaemonLayout(args.root_dir, args.role)
    try:
        check_run_dir(ensure_private_dir(layout.run_dir))
    except PermissionError as e:
        print(str(e), file=sys.stderr)
        return 1
    log_file = os.path.abspath(args.log_file or layout.default_log_file())
    from nepi.rpc.tls import TlsError, forget_listen, format_address, save_listen
    try:
        listen = _listen_settings(args, layout)
    except TlsError as e:
        print("nepid: %s" % e, file=sys.stderr)
        return 1
    lock = PidLock(layout.pid_file)
    try:
        lock.acquire()
    except AlreadyRunning as e:
        print("nepid: %s" % e if args.role == ROLE_EC else str(e), file=sys.stderr)
        return 1
    if args.listen:
        save_listen(layout.root_dir, format_address(listen.host, listen.port), listen.tls_dir)
    elif args.no_listen:
        forget_listen(layout.root_dir)
    os.makedirs(os.path.dirname(log_file), mode=0o700, exist_ok=True)
    log_stream = os.fdopen(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
                           "a")
    context = python_daemon.DaemonContext(
        working_directory=layout.root_dir, umask=0o077, pidfile=lock,
        detach_process=not args.foreground, files_preserve=[lock._fd, log_stream],
        stdout=None if args.foreground else log_stream,
        stderr=sys.stderr if args.foreground else log_stream,
        signal_map={signal.SIGTERM: None, signal.SIGHUP: None})
    stop = threading.Event()
    with context:
        if args.role == ROLE_EC:     # while still single-threaded: testbed daemons fork
            zygote.preload([t for t in args.preload.split(",") if t])   # from it in ms
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        log_to_file(log_file, args.log_level.lower() == "debug")
        log = logging.getLogger("nepi.daemon")
        sock = None
        try:
            service, identity = _build_service(args, layout)
            secret = create_secret(layout.secret_file)
            sock = layout.socket()
            pyro_daemon = make_unix_daemon(
                secret, args.role, sock, identity,
                listen and (listen.host, listen.port, listen.context))
            uri = pyro_daemon.register(service, objectId=layout.object_id)
            listening = listen and {"listen": pyro_daemon.tls_location,
                                    "tls_dir": listen.tls_dir}
            if listening:
                service.listen = listening
            if args.role == ROLE_EC and args.recover:
                service.recover_found()
            record = {"role": args.role, "state": "ready", "pid": os.getpid(),
                      "start_time": process_start_time(os.getpid()), "uri": str(uri),
                      "socket": sock, "root_dir": layout.root_dir, "log_file": log_file,
                      "owner": args.owner,
                      "launched_by": os.environ.get(LAUNCHED_BY)}
            record.update(identity)
            record.update(listening or {})
            write_ready_record(layout.record_file, record)
            if args.role == ROLE_EC:
                Manifest(layout.root_dir).update(
                    EC_KEY, role="ec", pid=record["pid"], start_time=record["start_time"],
                    socket=sock, log_file=log_file, state="running",
                    listen=listening and listening["listen"],
                    tls_dir=listening and listening["tls_dir"])
            log.info("%s daemon ready on %s%s", args.role, sock, listening and
                     " and on %(listen)s (mutual TLS, CA in %(tls_dir)s)" % listening or "")

            def relay():
                service.stop_event.wait()
                stop.set()
            threading.Thread(target=relay, daemon=True).start()
            idle_limit = idle_seconds()
            serve(pyro_daemon, stop,
                  idle_check=lambda idle: idle > idle_limit and not service.keeps_alive())
            pyro_daemon.close()
            if args.role == ROLE_EC:
                if not service.stop_event.is_set():   # not shut down: recoverable
                    service.release()
                Manifest(layout.root_dir).remove(EC_KEY)
            log.info("%s daemon exiting", args.role)
            return 0
        except Exception as e:
            log.error("daemon failed: %s\n%s", e, traceback.format_exc())
            write_ready_record(layout.record_file, {"state": "failed", "error": str(e),
                                                    "pid": os.getpid()})
            return 1
        finally:
            zygote.shutdown()
            # the record stays only to report a failure to the launcher
            try:
                failed = (read_json(layout.record_file) or {}).get("state") == "failed"
            except ValueError as e:
                log.warning("unreadable ready record %s: %s", layout.record_file, e)
                failed = False
            for path in (sock, layout.secret_file, None if failed else layout.record_file):
                if path and os.path.exists(path):
                    try:
                        os.unlink(path)
                    except OSError as e:
                        log.warning("could not remove %s on exit: %s (`nepid clean` "
                                    "removes it)", path, e.strerror or e)

def main(argv=None) -> int:
    return run(_parse(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())

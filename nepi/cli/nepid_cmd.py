"""``nepid``: the experiment-controller daemon and its root directory.

    nepid start   --root-dir DIR [--foreground] [--log-level Error|Debug]
                  [--listen HOST:PORT --tls-dir TLSDIR | --no-listen]
    nepid status  --root-dir DIR
    nepid stop    --root-dir DIR [--no-traces]
    nepid run     FILE.xml --root-dir DIR [--log-level L] [-q]
    nepid recover --root-dir DIR [--log-level L]
    nepid clean   --root-dir DIR [--force]
    nepid certs   --tls-dir TLSDIR [--client NAME]... [--host NAME_OR_IP]...

status, stop and run reach a nepid on another host with ``--connect HOST:PORT --tls-dir
TLSDIR [--client NAME]`` instead of ``--root-dir`` (mutual TLS, see nepi.rpc.tls).

Exit status: 0 success; 1 failure (refused, failed deployment, daemon not answering);
2 usage; 3 nepid is not running (status, stop); 130 interrupted.
"""

import argparse
import os
import sys
from typing import Dict, List, NamedTuple, Optional

from nepi.cli.common import (EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, CliError,
                             allow_root_argument,
                             command_main, command_parser, err, human_duration,
                             load_valid_design, out, plural, testbed_status_name)

PROG = "nepid"
EXIT_NOT_RUNNING = 3
LOG_LEVELS = ("Error", "Debug")


class Command(NamedTuple):
    help: str
    add_arguments: callable
    run: callable


# ---- helpers ----------------------------------------------------------------------------

def _root(args) -> str:
    if args.root_dir is None:
        raise CliError("--root-dir DIR is required (or --connect HOST:PORT --tls-dir DIR)",
                       EXIT_USAGE)
    return os.path.abspath(args.root_dir)


def _remote_arguments(parser) -> None:
    parser.add_argument("--connect", metavar="HOST:PORT",
                        help="reach the nepid listening there (`nepid start --listen`) over "
                             "mutual TLS, instead of the one of --root-dir")
    parser.add_argument("--tls-dir", metavar="DIR",
                        help="with --connect: the `nepid certs` directory (or a copy holding "
                             "ca.crt and clients/NAME.crt, clients/NAME.key)")
    parser.add_argument("--client", metavar="NAME",
                        help="with --connect: the client certificate to use (default: the "
                             "only one in DIR/clients)")


def _target(args):
    """``(proxy, root_dir)``: the nepid of --connect (root_dir None: it runs elsewhere),
    or the one serving --root-dir (proxy None if none runs there)."""
    from nepi.errors import ControllerUnreachableError
    from nepi.rpc.ec_client import attach_ec_over_tls
    from nepi.rpc.tls import client_files
    if not args.connect:
        if args.tls_dir or args.client:
            raise CliError("--tls-dir and --client go with --connect", EXIT_USAGE)
        root_dir = _root(args)
        return _attach(root_dir), root_dir
    if args.root_dir is not None:
        raise CliError("give --root-dir or --connect, not both", EXIT_USAGE)
    if not args.tls_dir:
        raise CliError("--connect needs --tls-dir", EXIT_USAGE)
    try:
        return attach_ec_over_tls(args.connect, client_files(args.tls_dir, args.client)), None
    except ControllerUnreachableError as e:
        raise CliError("cannot reach nepid at %s: %s" % (args.connect, e)) from e


def _how(args, root_dir: Optional[str]) -> str:
    """The options naming the same nepid again, for the hints we print."""
    if root_dir is not None:
        return "--root-dir %s" % root_dir
    return "--connect %s --tls-dir %s%s" % (args.connect, args.tls_dir,
                                            " --client %s" % args.client if args.client
                                            else "")


def _log_level(text: str) -> str:
    for level in LOG_LEVELS:
        if text.lower() == level.lower():
            return level
    raise argparse.ArgumentTypeError("log level must be one of %s" % ", ".join(LOG_LEVELS))


def _attach(root_dir: str):
    """A proxy to the nepid serving ``root_dir``, or None if none is running.

    CliError if a process holds nepid's pid lock but cannot be reached."""
    from nepi.cli.rootdir import nepid_lock_pid
    from nepi.errors import ControllerUnreachableError
    from nepi.rpc.ec_client import attach_ec
    try:
        return attach_ec(root_dir)
    except ControllerUnreachableError as e:
        pid = nepid_lock_pid(root_dir)
        if pid is None:
            return None
        raise CliError("nepid (pid %s) holds %s but does not answer (%s); it may still be "
                       "starting or recovering (see %s), or be hung: `nepid clean --root-dir "
                       "%s --force` removes it"
                       % (pid, os.path.join(root_dir, "nepid.pid"), e,
                          os.path.join(root_dir, "logs", "nepid.log"), root_dir)) from e


def _testbed_table(testbeds: List[dict]) -> List[str]:
    headers = ["guid", "testbed", "mode", "pid", "status", "elements", "policy", "failure"]
    rows = []
    for tb in testbeds:
        rows.append([str(tb.get("guid")), str(tb.get("testbed_id")), str(tb.get("mode")),
                     str(tb.get("pid") or "-"), testbed_status_name(tb.get("status")),
                     str(tb.get("elements")), str(tb.get("policy") or "-"),
                     str(tb.get("failed") or "")])
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]
    lines = []
    for row in [headers] + rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return lines


def _print_status(status: dict) -> None:
    out("experiment: %s" % status.get("state"))
    if status.get("error"):
        out("error: %s" % status["error"])
    testbeds = status.get("testbeds") or []
    if testbeds:
        out("testbeds:")
        for line in _testbed_table(testbeds):
            out(line)
    for tb in testbeds:                      # refused frames show who knocked at a channel
        channels = tb.get("channels")
        if channels:
            out("tunchannels of testbed %s: %s" % (tb.get("guid"), ", ".join(
                "%s %s" % (name.replace("_", " "), value)
                for name, value in sorted(channels.items()))))


def _report_not_running(root_dir: str) -> int:
    from nepi.cli.rootdir import daemon_entries, experiment_state
    out("nepid is not running in %s" % root_dir)
    if not os.path.isdir(root_dir):
        return EXIT_NOT_RUNNING
    state = experiment_state(root_dir)
    if state:
        out("experiment state recorded in manifest.json: %s" % state)
    entries = daemon_entries(root_dir)
    from nepi.rpc.cleanup import leftover_files
    files = leftover_files(root_dir)
    if entries or files:
        out("leftovers:")
        for entry in entries:
            out("  %s" % entry.describe())
        for path in files:
            out("  %s" % path)
        if state in ("started", "stopped", "deploying"):
            out("`nepid recover --root-dir %s` re-attaches to the experiment; "
                "`nepid clean --root-dir %s` removes what is left" % (root_dir, root_dir))
        else:
            out("`nepid clean --root-dir %s` removes what is left" % root_dir)
    return EXIT_NOT_RUNNING


def _refuse_leftovers(root_dir: str) -> None:
    from nepi.cli.rootdir import daemon_entries
    alive = [d for d in daemon_entries(root_dir) if d.alive]
    if alive:
        raise CliError("%s still has running daemons of an earlier experiment (%s); "
                       "`nepid recover`, `nepid stop` or `nepid clean --root-dir %s` first"
                       % (root_dir, "; ".join(d.describe() for d in alive), root_dir))


# ---- start ------------------------------------------------------------------------------

def _start_arguments(parser) -> None:
    allow_root_argument(parser)
    parser.add_argument("--foreground", action="store_true",
                        help="run in this process (for systemd) instead of detaching")
    parser.add_argument("--log-level", type=_log_level, default="Error", metavar="LEVEL",
                        help="Error (default) or Debug")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="also serve remote clients on TCP, with mutual TLS (port 0: any "
                             "free port); remembered in DIR for restarts")
    parser.add_argument("--tls-dir", metavar="TLSDIR",
                        help="with --listen: the `nepid certs` directory")
    parser.add_argument("--no-listen", action="store_true",
                        help="forget a --listen remembered in DIR")


def _listen_arguments(args) -> List[str]:
    if bool(args.listen) != bool(args.tls_dir):
        raise CliError("--listen and --tls-dir go together", EXIT_USAGE)
    if args.listen and args.no_listen:
        raise CliError("--listen and --no-listen exclude each other", EXIT_USAGE)
    if args.listen:
        return ["--listen", args.listen, "--tls-dir", os.path.abspath(args.tls_dir)]
    return ["--no-listen"] if args.no_listen else []


def cmd_start(args) -> int:
    from nepi.cli.rootdir import nepid_lock_pid
    from nepi.rpc.ec_client import nepid_arguments
    root_dir = _root(args)
    listen = _listen_arguments(args)
    pid = nepid_lock_pid(root_dir)
    if pid is not None:
        raise CliError("already running (pid %s) serving %s" % (pid, root_dir))
    if args.foreground:
        from nepi.rpc import daemon_main
        os.makedirs(root_dir, exist_ok=True)
        out("nepid (pid %d) serving %s in the foreground; Ctrl-C or `nepid stop --root-dir "
            "%s` ends it; log: %s" % (os.getpid(), root_dir, root_dir,
                                      os.path.join(root_dir, "logs", "nepid.log")))
        sys.stdout.flush()
        return daemon_main.main(["ec", "--root-dir", root_dir, "--foreground"] +
                                nepid_arguments(root_dir, args.log_level, True,
                                                args.allow_root) + listen)
    from nepi.rpc.launcher import launch
    record = launch("ec", root_dir, nepid_arguments(root_dir, args.log_level, True,
                                                    args.allow_root) + listen)
    out("nepid started (pid %s) serving %s" % (record.get("pid"), root_dir))
    if record.get("listen"):
        _print_listen(record)
    proxy = _attach(root_dir)
    if proxy is not None:
        try:
            status = proxy.daemon_status()
        finally:
            proxy.close()
        if status.get("state") not in ("empty", None):
            out("it re-attached to the experiment found there:")
            _print_status(status)
    out("log: %s" % record.get("log_file"))
    return EXIT_OK


# ---- status -----------------------------------------------------------------------------

def _print_listen(info: dict) -> None:
    out("listening on %s (mutual TLS: clients need %s and a certificate of it)"
        % (info["listen"], os.path.join(info.get("tls_dir") or "TLSDIR", "ca.crt")))


def cmd_status(args) -> int:
    proxy, root_dir = _target(args)
    if proxy is None:
        return _report_not_running(root_dir)
    try:
        status = proxy.daemon_status()
    finally:
        proxy.close()
    out("nepid running (pid %s) serving %s%s, up %s"
        % (status.get("pid"), status.get("root_dir") or root_dir,
           "" if root_dir else " on %s" % args.connect, human_duration(status.get("uptime"))))
    if status.get("listen"):
        _print_listen(status["listen"])
    _print_status(status)
    return EXIT_OK


# ---- stop -------------------------------------------------------------------------------

def _stop_arguments(parser) -> None:
    parser.add_argument("--no-traces", action="store_true",
                        help="do not copy the traces into DIR/traces before shutting down")


def cmd_stop(args) -> int:
    from nepi.cli.progress import one_line
    from nepi.cli.traces import TRACES_DIR, copy_traces
    proxy, root_dir = _target(args)
    if proxy is None:
        return _report_not_running(root_dir)
    pid = proxy.pid
    state = proxy.state
    problems = []
    if state == "started":
        try:
            proxy.stop()
        except Exception as e:
            problems.append("stopping the experiment failed: %s" % one_line(e))
    copied = None
    if state in ("started", "stopped") and not args.no_traces and root_dir is not None:
        copied = copy_traces(proxy, root_dir)
        problems += copied.errors
    remote_root = proxy.root_dir
    proxy.shutdown()
    from nepi.rpc.cleanup import leftover_files
    left = leftover_files(root_dir) if root_dir is not None else []
    out("nepid (pid %s) stopped; the experiment (%s) was shut down" % (pid, state))
    if copied is not None:
        out("traces: %s (%s)" % (os.path.join(root_dir, TRACES_DIR),
                                 plural(len(copied.written), "file")))
    if root_dir is None:
        out("kept on %s: logs, traces, experiment.xml and execute.xml in %s"
            % (args.connect, remote_root))
    else:
        out("kept: logs in %s, experiment.xml and execute.xml in %s"
            % (os.path.join(root_dir, "logs"), root_dir))
    for path in left:
        problems.append("left behind: %s (`nepid clean` removes it)" % path)
    for problem in problems:
        err("%s: %s" % (PROG, problem))
    return EXIT_PROBLEMS if problems else EXIT_OK


# ---- run --------------------------------------------------------------------------------

def _run_arguments(parser) -> None:
    allow_root_argument(parser)
    parser.add_argument("file", metavar="FILE.xml", help="experiment design file ('-' reads stdin)")
    parser.add_argument("--log-level", type=_log_level, default="Error", metavar="LEVEL",
                        help="log level of a nepid started by this command")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print nothing but errors (and the final summary)")


def cmd_run(args) -> int:
    import time
    from nepi.cli.progress import ProgressDisplay, follow, one_line
    from nepi.cli.rootdir import nepid_lock_pid
    from nepi.rpc.ec_client import start_nepid
    loaded = load_valid_design(args.file)
    if loaded is None:
        return EXIT_PROBLEMS
    xml, data = loaded
    say = (lambda line="": None) if args.quiet else out
    proxy, root_dir = _target(args)
    how = _how(args, root_dir)
    started_here = False
    if root_dir is None:
        root_dir = proxy.root_dir      # on the nepid host: for messages only
    elif proxy is None:
        if nepid_lock_pid(root_dir) is not None:
            raise CliError("nepid in %s is starting or hung; try again or `nepid clean`"
                           % root_dir)
        _refuse_leftovers(root_dir)
        os.makedirs(root_dir, exist_ok=True)
        proxy = start_nepid(root_dir, args.log_level, allowed_roots=args.allow_root)
        started_here = True
        say("nepid started (pid %s) serving %s" % (proxy.pid, root_dir))
    testbeds = {g: data.get_testbed_data(g)[0] for g in data.testbed_guids()}
    display = ProgressDisplay(testbeds, quiet=args.quiet, origin=time.time())
    pid = proxy.pid
    try:
        try:
            proxy.submit(xml, args.allow_root)
            say("submitted %s (%s, %s); deploying" % (
                args.file, plural(len(testbeds), "testbed"),
                plural(len(data.box_guids()), "element")))
            proxy.start_background()
            follow(proxy, display, until=lambda: proxy.state in ("started", "failed"))
        except KeyboardInterrupt:
            display.close()
            err("%s: no longer following; the deployment goes on in nepid (pid %s): "
                "`nepid status %s`, `nepid stop %s`" % (PROG, pid, how, how))
            return EXIT_INTERRUPTED
        except Exception:
            display.close()
            if started_here:
                proxy.shutdown()
            raise
        display.close()
        state = proxy.state
        if state == "failed":
            error = proxy.error
            if started_here:
                proxy.shutdown()
                note = "nepid (pid %s) was stopped" % pid
            else:
                note = "nepid (pid %s) keeps running" % pid
            raise CliError("deployment failed: %s (%s; log: %s)"
                           % (one_line(error), note,
                              os.path.join(root_dir, "logs", "nepid.log")))
        status = proxy.daemon_status()
    finally:
        proxy.close()
    out("experiment %s in nepid (pid %s) serving %s" % (state, pid, root_dir))
    if not args.quiet:
        for line in _testbed_table(status.get("testbeds") or []):
            out(line)
    out("query it:  nepid status %s" % how)
    out("stop it:   nepid stop %s" % how)
    return EXIT_OK


# ---- recover ----------------------------------------------------------------------------

def _recover_arguments(parser) -> None:
    parser.add_argument("--log-level", type=_log_level, default="Error", metavar="LEVEL",
                        help="log level of the restarted nepid")


def cmd_recover(args) -> int:
    from nepi.cli.rootdir import daemon_entries, experiment_state
    from nepi.core.execute import EXECUTE_XML
    from nepi.rpc.ec_client import start_nepid
    root_dir = _root(args)
    proxy = _attach(root_dir)
    if proxy is not None:
        try:
            status = proxy.daemon_status()
        finally:
            proxy.close()
        out("nepid is running (pid %s) and serving %s: nothing to recover"
            % (status.get("pid"), root_dir))
        _print_status(status)
        return EXIT_OK
    state = experiment_state(root_dir)
    if not os.path.exists(os.path.join(root_dir, EXECUTE_XML)) or \
            state in (None, "shutdown", "failed"):
        raise CliError("nothing to recover in %s: %s" % (
            root_dir, "no deployed experiment (no %s)" % EXECUTE_XML
            if not os.path.exists(os.path.join(root_dir, EXECUTE_XML))
            else "the experiment was %s" % (state or "never started")))
    before = {d.entry.get("testbed_guid"): d.entry.get("pid") for d in daemon_entries(root_dir)
              if d.key != "ec" and d.alive}
    proxy = start_nepid(root_dir, args.log_level, recover=True)
    try:
        status = proxy.daemon_status()
    finally:
        proxy.close()
    out("nepid restarted (pid %s) serving %s; it recovered the experiment: %s"
        % (status.get("pid"), root_dir, status.get("state")))
    testbeds = status.get("testbeds") or []
    for tb in testbeds:
        guid = tb.get("guid")
        if tb.get("failed"):
            how = "FAILED: %s" % tb["failed"]
        elif tb.get("mode") != "daemon":
            how = "in-process controller rebuilt (policy %s)" % tb.get("policy")
        elif before.get(guid) is not None and before.get(guid) == tb.get("pid"):
            how = "reconnected to its daemon (pid %s)" % tb.get("pid")
        else:
            how = "new daemon (pid %s), policy %s" % (tb.get("pid"), tb.get("policy"))
        if tb.get("failed"):
            out("  testbed %s (%s): %s" % (guid, tb.get("testbed_id"), how))
        else:
            out("  testbed %s (%s): %s, %s" % (guid, tb.get("testbed_id"),
                                               testbed_status_name(tb.get("status")), how))
    if status.get("error"):
        out("error: %s" % status["error"])
    failed = [tb for tb in testbeds if tb.get("failed")]
    if status.get("state") not in ("started", "stopped") or failed:
        err("%s: recovery incomplete: experiment %s%s (see %s)"
            % (PROG, status.get("state"),
               ", %s failed" % plural(len(failed), "testbed") if failed else "",
               os.path.join(root_dir, "logs", "nepid.log")))
        return EXIT_PROBLEMS
    return EXIT_OK


# ---- clean ------------------------------------------------------------------------------

def _clean_arguments(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="clean even if nepid answers (kills it and its experiment)")


def cmd_clean(args) -> int:
    from nepi.rpc.cleanup import clean_root
    root_dir = _root(args)
    if not os.path.isdir(root_dir):
        raise CliError("%s is not a directory" % root_dir, EXIT_USAGE)
    if not args.force:
        proxy = None
        try:
            proxy = _attach(root_dir)
        except CliError:
            proxy = None     # holds the lock but does not answer: a leftover to kill
        if proxy is not None:
            pid = proxy.pid
            proxy.close()
            raise CliError("nepid (pid %s) is running and answering in %s: use `nepid stop "
                           "--root-dir %s` (or `nepid clean --force` to kill it)"
                           % (pid, root_dir, root_dir))
    report = clean_root(root_dir)
    out("cleaned %s" % root_dir)
    for line in report.killed:
        out("  %s" % line)
    for path in report.removed:
        out("  removed %s" % path)
    if report.cleaned:
        out("  ran the cleanup of %s" % ", ".join(report.cleaned))
    if not report.killed and not report.removed:
        out("  no daemon or runtime file was left")
    out("kept: logs, traces, experiment.xml and execute.xml")
    for problem in report.problems:
        err("%s: %s" % (PROG, problem))
    return EXIT_PROBLEMS if report.problems else EXIT_OK


# ---- certs ------------------------------------------------------------------------------

def _certs_arguments(parser) -> None:
    parser.add_argument("--tls-dir", required=True, metavar="TLSDIR",
                        help="where the CA, the server and the client certificates are kept")
    parser.add_argument("--client", action="append", default=[], metavar="NAME",
                        help="make a client certificate TLSDIR/clients/NAME.crt (repeatable)")
    parser.add_argument("--host", action="append", default=[], metavar="NAME_OR_IP",
                        help="another name or address clients use for this host "
                             "(repeatable; its name, FQDN and loopback are always in)")


def cmd_certs(args) -> int:
    from nepi.rpc.tls import TlsDir, make_certificates
    report = make_certificates(args.tls_dir, args.client, args.host)
    for line in report.made:
        out("made %s" % line)
    for line in report.kept:
        out("kept %s" % line)
    layout = TlsDir(args.tls_dir)
    out("serve:  nepid start --root-dir DIR --listen HOST:PORT --tls-dir %s" % layout.path)
    out("client: copy %s and clients/NAME.crt, clients/NAME.key (keep the key private), "
        "then nepid status --connect HOST:PORT --tls-dir COPY --client NAME" % layout.ca_cert)
    return EXIT_OK


# ---- the command ------------------------------------------------------------------------

def _root_dir_argument(parser, remote: bool = False) -> None:
    parser.add_argument("--root-dir", required=not remote, metavar="DIR",
                        help="the experiment's root directory" +
                             (" (or --connect)" if remote else ""))
    if remote:
        _remote_arguments(parser)


def _with_root_dir(add_arguments, remote: bool = False):
    """A command's arguments after --root-dir (and, with ``remote``, --connect...)."""
    def add(parser):
        _root_dir_argument(parser, remote)
        add_arguments(parser)
    return add


COMMANDS: Dict[str, Command] = {
    "start": Command("start nepid on a root directory (re-attaching to an experiment "
                     "found there)", _with_root_dir(_start_arguments), cmd_start),
    "status": Command("show nepid, the experiment and its testbeds",
                      _with_root_dir(lambda p: None, remote=True), cmd_status),
    "stop": Command("stop the experiment, shut its daemons down and stop nepid "
                    "(logs, traces and XML are kept)",
                    _with_root_dir(_stop_arguments, remote=True), cmd_stop),
    "run": Command("submit an experiment to nepid (started if needed) and follow its "
                   "deployment", _with_root_dir(_run_arguments, remote=True), cmd_run),
    "recover": Command("restart a killed nepid and re-attach it to its experiment",
                       _with_root_dir(_recover_arguments), cmd_recover),
    "clean": Command("kill leftover daemons of a root directory and remove their runtime "
                     "files and testbed leftovers", _with_root_dir(_clean_arguments),
                     cmd_clean),
    "certs": Command("make a CA, a server certificate and client certificates for "
                     "`nepid start --listen` (existing ones are kept)", _certs_arguments,
                     cmd_certs),
}


def build_parser() -> argparse.ArgumentParser:
    return command_parser(PROG, "The nepi experiment-controller daemon and its root "
                                "directories.", COMMANDS)


def main(argv: Optional[List[str]] = None) -> int:
    return command_main(PROG, build_parser(), COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())

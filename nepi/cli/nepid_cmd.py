"""``nepid``: the experiment-controller daemon and its root directory.

    nepid start   --root-dir DIR [--foreground] [--log-level Error|Debug]
                  [--listen HOST:PORT --tls-dir TLSDIR | --no-listen]
    nepid status  --root-dir DIR
    nepid stop    --root-dir DIR [--no-traces]
    nepid run     FILE.xml --root-dir DIR [--log-level L] [-q]
    nepid recover --root-dir DIR [--log-level L]
    nepid clean   --root-dir DIR [--force]
    nepid exec    --root-dir DIR NODE -- CMD [ARGS...]
    nepid shell   --root-dir DIR NODE
    nepid traces  --root-dir DIR [ELEMENT TRACE [--follow]]
    nepid events  --root-dir DIR [--follow] [--json]
    nepid timeline --root-dir DIR -o FILE.svg|.png|.pdf
    nepid certs   --tls-dir TLSDIR [--client NAME]... [--host NAME_OR_IP]...

status, stop, run, exec, shell and traces reach a nepid on another host with ``--connect
HOST:PORT --tls-dir TLSDIR [--client NAME]`` instead of ``--root-dir`` (mutual TLS, see
nepi.rpc.tls).

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
from nepi.util.rootfiles import DESIGN_XML, EXECUTE_XML, LOGS_DIR, MANIFEST, TRACES_DIR

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
    from nepi.rpc.rootdir import attach_nepid
    from nepi.rpc.tls import client_files
    if not args.connect:
        if args.tls_dir or args.client:
            raise CliError("--tls-dir and --client go with --connect", EXIT_USAGE)
        root_dir = _root(args)
        return attach_nepid(root_dir), root_dir
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


def _testbed_table(testbeds: List[dict]) -> List[str]:
    headers = ["guid", "testbed", "host", "mode", "pid", "status", "elements", "policy",
               "failure"]
    rows = []
    for tb in testbeds:
        rows.append([str(tb.get("guid")), str(tb.get("testbed_id")),
                     str(tb.get("host") or "local"), str(tb.get("mode")),
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


def _print_clean_lines(cleaned) -> None:
    for line in cleaned.killed + ["cleaned %s" % c for c in cleaned.cleaned]:
        out("  %s" % line)
    for problem in cleaned.problems:
        err("%s: %s" % (PROG, problem))


def _report_not_running(root_dir: str) -> int:
    from nepi.core.manifest import SHUTTING_DOWN
    from nepi.rpc.rootdir import leftovers
    out("nepid is not running in %s" % root_dir)
    left = leftovers(root_dir)
    if left.state:
        out("experiment state recorded in %s: %s" % (MANIFEST, left.state))
    if left.error:
        out("error: %s" % left.error)
    if left.daemons or left.files:
        out("leftovers:")
        for entry in left.daemons:
            out("  %s" % entry.describe())
        for path in left.files:
            out("  %s" % path)
        if left.state == SHUTTING_DOWN:
            out("nepid died while shutting the experiment down: `nepid stop --root-dir %s` "
                "finishes the shutdown" % root_dir)
        elif left.recoverable:
            out("`nepid recover --root-dir %s` re-attaches to the experiment; "
                "`nepid clean --root-dir %s` removes what is left" % (root_dir, root_dir))
        else:
            out("`nepid clean --root-dir %s` removes what is left" % root_dir)
    return EXIT_NOT_RUNNING


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
    from nepi.rpc.nepid_control import launch_nepid, nepid_status, run_nepid_in_foreground
    from nepi.rpc.rootdir import nepid_log_file, refuse_running_nepid
    root_dir = _root(args)
    listen = _listen_arguments(args)
    refuse_running_nepid(root_dir)
    if args.foreground:
        out("nepid (pid %d) serving %s in the foreground; Ctrl-C or `nepid stop --root-dir "
            "%s` ends it; log: %s" % (os.getpid(), root_dir, root_dir,
                                      nepid_log_file(root_dir)))
        sys.stdout.flush()
        return run_nepid_in_foreground(root_dir, args.log_level, args.allow_root, listen)
    record = launch_nepid(root_dir, args.log_level, args.allow_root, listen)
    out("nepid started (pid %s) serving %s" % (record.get("pid"), root_dir))
    if record.get("listen"):
        _print_listen(record)
    status = nepid_status(root_dir)
    if status is not None and status.get("state") not in ("empty", None):
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
    from nepi.errors import ControllerUnreachableError
    from nepi.rpc.nepid_control import stop_nepid, wait_until_unlocked
    proxy, root_dir = _target(args)
    if proxy is None:
        return _stop_without_nepid(root_dir)
    try:
        report = stop_nepid(proxy, root_dir, with_traces=not args.no_traces)
    except ControllerUnreachableError as e:
        if root_dir is None or not wait_until_unlocked(root_dir):
            raise
        # nepid died while stopping: what it left is shut down by record, the same way
        err("%s: nepid (pid %s) died while stopping the experiment (%s); finishing the "
            "shutdown without it" % (PROG, proxy.pid, one_line(e)))
        return _stop_without_nepid(root_dir)
    problems = []
    if report.stop_error is not None:
        problems.append("stopping the experiment failed: %s" % one_line(report.stop_error))
    if report.copied is not None:
        problems += report.copied.errors
    out("nepid (pid %s) stopped; the experiment (%s) was shut down"
        % (report.pid, report.state))
    if report.copied is not None:
        out("traces: %s (%s)" % (os.path.join(root_dir, TRACES_DIR),
                                 plural(len(report.copied.written), "file")))
    if root_dir is None:
        out("kept on %s: logs, traces, %s and %s in %s"
            % (args.connect, DESIGN_XML, EXECUTE_XML, report.remote_root))
    else:
        out("kept: logs in %s, %s and %s in %s"
            % (os.path.join(root_dir, LOGS_DIR), DESIGN_XML, EXECUTE_XML, root_dir))
    for path in report.left:
        problems.append("left behind: %s (`nepid clean` removes it)" % path)
    for problem in problems:
        err("%s: %s" % (PROG, problem))
    return EXIT_PROBLEMS if problems else EXIT_OK


def _stop_without_nepid(root_dir: str) -> int:
    """nepid is dead (killed while deploying, running or stopping): shut the surviving
    testbed daemons down by record and remove every recorded testbed's resources; exit 0
    once nothing is left. A root dir holding nothing of an experiment: "not running"."""
    from nepi.rpc.nepid_control import stop_without_nepid
    from nepi.rpc.rootdir import LIVE_STATES, leftovers
    left = leftovers(root_dir)
    if not (left.daemons or left.files or left.state in LIVE_STATES):
        return _report_not_running(root_dir)
    out("nepid is not running in %s (experiment %s): shutting down what it left"
        % (root_dir, left.state or "state unknown"))
    report = stop_without_nepid(root_dir)
    for line in report.shut_down:
        out("  %s" % line)
    for line in report.refused:
        out("  %s" % line)
    for line in report.cleaned.killed:
        out("  %s" % line)
    for line in report.cleaned.cleaned:
        out("  resources of %s removed" % line)
    if report.cleaned.removed:
        out("  %s removed" % plural(len(report.cleaned.removed), "runtime file"))
    out("kept: logs in %s, %s and %s in %s"
        % (os.path.join(root_dir, LOGS_DIR), DESIGN_XML, EXECUTE_XML, root_dir))
    problems = list(report.cleaned.problems)
    problems += ["left behind: %s (`nepid stop` or `nepid clean` again removes it)" % what
                 for what in report.left]
    for problem in problems:
        err("%s: %s" % (PROG, problem))
    return EXIT_PROBLEMS if report.left else EXIT_OK


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
    from nepi.rpc.nepid_control import start_nepid_to_run
    from nepi.rpc.rootdir import nepid_log_file
    loaded = load_valid_design(args.file)
    if loaded is None:
        return EXIT_PROBLEMS
    xml, data = loaded
    say = (lambda line="": None) if args.quiet else out
    proxy, root_dir = _target(args)
    how = _how(args, root_dir)
    started_here = False
    testbeds = {g: data.get_testbed_data(g)[0] for g in data.testbed_guids()}
    if root_dir is not None and proxy is None:
        proxy = start_nepid_to_run(root_dir, args.log_level, args.allow_root,
                                   list(testbeds.values()))
        started_here = True
        say("nepid started (pid %s) serving %s" % (proxy.pid, root_dir))
    elif root_dir is None:
        root_dir = proxy.root_dir      # on the nepid host: for messages only
    display = ProgressDisplay(testbeds, quiet=args.quiet, origin=time.time(),
                              elements=len(data.box_guids()))
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
                           % (one_line(error), note, nepid_log_file(root_dir)))
        status = None if args.quiet else proxy.daemon_status()
    finally:
        proxy.close()
    out("experiment %s in nepid (pid %s) serving %s" % (state, pid, root_dir))
    if status is not None:
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
    from nepi.core.manifest import SHUTTING_DOWN
    from nepi.rpc.nepid_control import nepid_status, recover_nepid
    from nepi.rpc.rootdir import nepid_log_file
    root_dir = _root(args)
    status = nepid_status(root_dir)
    if status is not None:
        out("nepid is running (pid %s) and serving %s: nothing to recover"
            % (status.get("pid"), root_dir))
        _print_status(status)
        return EXIT_OK
    report = recover_nepid(root_dir, args.log_level)
    if report.cleaned is not None and report.state == SHUTTING_DOWN:
        out("nepid died while shutting the experiment in %s down; finished the shutdown"
            % root_dir)
        _print_clean_lines(report.cleaned)
        return EXIT_PROBLEMS if report.cleaned.problems else EXIT_OK
    if report.cleaned is not None:
        out("nothing to resume in %s: the experiment was %s; removed what it left behind"
            % (root_dir, report.state or "in an unknown state"))
        _print_clean_lines(report.cleaned)
        err("%s: no experiment recovered in %s (it was %s; its leftovers were removed)"
            % (PROG, root_dir, report.state or "in an unknown state"))
        return EXIT_PROBLEMS
    status, before = report.status, report.before
    out("nepid restarted (pid %s) serving %s; it recovered the experiment: %s"
        % (status.get("pid"), root_dir, status.get("state")))
    if status.get("recovery") and status.get("recovery") != status.get("error"):
        out(status["recovery"])
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
               nepid_log_file(root_dir)))
        return EXIT_PROBLEMS
    return EXIT_OK


# ---- clean ------------------------------------------------------------------------------

def _clean_arguments(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="clean even if nepid answers (kills it and its experiment)")


def cmd_clean(args) -> int:
    from nepi.rpc.nepid_control import clean
    root_dir = _root(args)
    if not os.path.isdir(root_dir):
        raise CliError("%s is not a directory" % root_dir, EXIT_USAGE)
    report = clean(root_dir, args.force)
    out("cleaned %s" % root_dir)
    for line in report.killed:
        out("  %s" % line)
    for path in report.removed:
        out("  removed %s" % path)
    if report.cleaned:
        out("  ran the cleanup of %s" % ", ".join(report.cleaned))
    if not report.killed and not report.removed:
        out("  no daemon or runtime file was left")
    out("kept: logs, traces, %s and %s" % (DESIGN_XML, EXECUTE_XML))
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


def _exec_arguments(parser) -> None:
    from nepi.cli import exec_cmd
    exec_cmd.add_exec_arguments(parser)


def cmd_exec(args) -> int:
    from nepi.cli import exec_cmd
    return exec_cmd.run_exec(args, _target)


def _shell_arguments(parser) -> None:
    from nepi.cli import exec_cmd
    exec_cmd.add_shell_arguments(parser)


def cmd_shell(args) -> int:
    from nepi.cli import exec_cmd
    return exec_cmd.run_shell(args, _target)


def _traces_arguments(parser) -> None:
    from nepi.cli import traces_cmd
    traces_cmd.add_arguments(parser)


def cmd_traces(args) -> int:
    from nepi.cli import traces_cmd
    return traces_cmd.run(args, _target)


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
    "events": (lambda m: Command(m.HELP, _with_root_dir(m.add_arguments), m.run))(
        __import__("nepi.cli.events_cmd", fromlist=["run"])),
    "timeline": (lambda m: Command(m.HELP, _with_root_dir(m.add_arguments), m.run))(
        __import__("nepi.cli.timeline_cmd", fromlist=["run"])),
    "clean": Command("kill leftover daemons of a root directory and remove their runtime "
                     "files and testbed leftovers", _with_root_dir(_clean_arguments),
                     cmd_clean),
    "exec": Command("run a command in a node of the running experiment (NODE -- CMD...)",
                    _with_root_dir(_exec_arguments, remote=True), cmd_exec),
    "shell": Command("open an interactive shell in a node of the running experiment",
                     _with_root_dir(_shell_arguments, remote=True), cmd_shell),
    "traces": Command("list the running experiment's traces, or print or follow one",
                      _with_root_dir(_traces_arguments, remote=True), cmd_traces),
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

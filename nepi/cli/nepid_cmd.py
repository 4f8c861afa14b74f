"""``nepid``: the experiment-controller daemon and its root directory.

    nepid start   --root-dir DIR [--foreground] [--log-level Error|Debug]
    nepid status  --root-dir DIR
    nepid stop    --root-dir DIR [--no-traces]
    nepid run     FILE.xml --root-dir DIR [--log-level L] [-q]
    nepid recover --root-dir DIR [--log-level L]
    nepid clean   --root-dir DIR [--force]

Exit status: 0 success; 1 failure (refused, failed deployment, daemon not answering);
2 usage; 3 nepid is not running (status, stop); 130 interrupted.
"""

import argparse
import hashlib
import os
import sys
from typing import Dict, List, NamedTuple, Optional

from nepi.cli.common import (EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, CliError,
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
    return os.path.abspath(args.root_dir)


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


def _leftover_files(root_dir: str) -> List[str]:
    """Runtime files of daemons (sockets, secrets, records, pid files) under root_dir and
    under each testbed root it names."""
    found = []
    for layout in _layouts(root_dir):
        for path in _runtime_files(layout):
            if os.path.lexists(path):
                found.append(path)
    return found


def _report_not_running(root_dir: str) -> int:
    from nepi.cli.rootdir import daemon_entries, experiment_state
    out("nepid is not running in %s" % root_dir)
    if not os.path.isdir(root_dir):
        return EXIT_NOT_RUNNING
    state = experiment_state(root_dir)
    if state:
        out("experiment state recorded in manifest.json: %s" % state)
    entries = daemon_entries(root_dir)
    files = _leftover_files(root_dir)
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
    parser.add_argument("--foreground", action="store_true",
                        help="run in this process (for systemd) instead of detaching")
    parser.add_argument("--log-level", type=_log_level, default="Error", metavar="LEVEL",
                        help="Error (default) or Debug")


def cmd_start(args) -> int:
    from nepi.cli.rootdir import nepid_lock_pid
    root_dir = _root(args)
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
        return daemon_main.main(["ec", "--root-dir", root_dir, "--foreground", "--recover",
                                 "--log-level", args.log_level])
    from nepi.rpc.launcher import launch
    record = launch("ec", root_dir, ["--log-level", args.log_level, "--recover"])
    out("nepid started (pid %s) serving %s" % (record.get("pid"), root_dir))
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

def cmd_status(args) -> int:
    root_dir = _root(args)
    proxy = _attach(root_dir)
    if proxy is None:
        return _report_not_running(root_dir)
    try:
        status = proxy.daemon_status()
    finally:
        proxy.close()
    out("nepid running (pid %s) serving %s, up %s" % (status.get("pid"), root_dir,
                                                     human_duration(status.get("uptime"))))
    _print_status(status)
    return EXIT_OK


# ---- stop -------------------------------------------------------------------------------

def _stop_arguments(parser) -> None:
    parser.add_argument("--no-traces", action="store_true",
                        help="do not copy the traces into DIR/traces before shutting down")


def cmd_stop(args) -> int:
    from nepi.cli.progress import one_line
    from nepi.cli.traces import TRACES_DIR, copy_traces
    root_dir = _root(args)
    proxy = _attach(root_dir)
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
    if state in ("started", "stopped") and not args.no_traces:
        copied = copy_traces(proxy, root_dir)
        problems += copied.errors
    proxy.shutdown()
    left = _leftover_files(root_dir)
    out("nepid (pid %s) stopped; the experiment (%s) was shut down" % (pid, state))
    if copied is not None:
        out("traces: %s (%s)" % (os.path.join(root_dir, TRACES_DIR),
                                 plural(len(copied.written), "file")))
    out("kept: logs in %s, experiment.xml and execute.xml in %s"
        % (os.path.join(root_dir, "logs"), root_dir))
    for path in left:
        problems.append("left behind: %s (`nepid clean` removes it)" % path)
    for problem in problems:
        err("%s: %s" % (PROG, problem))
    return EXIT_PROBLEMS if problems else EXIT_OK


# ---- run --------------------------------------------------------------------------------

def _run_arguments(parser) -> None:
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
    root_dir = _root(args)
    say = (lambda line="": None) if args.quiet else out
    proxy = _attach(root_dir)
    started_here = False
    if proxy is None:
        if nepid_lock_pid(root_dir) is not None:
            raise CliError("nepid in %s is starting or hung; try again or `nepid clean`"
                           % root_dir)
        _refuse_leftovers(root_dir)
        os.makedirs(root_dir, exist_ok=True)
        proxy = start_nepid(root_dir, args.log_level)
        started_here = True
        say("nepid started (pid %s) serving %s" % (proxy.pid, root_dir))
    testbeds = {g: data.get_testbed_data(g)[0] for g in data.testbed_guids()}
    display = ProgressDisplay(testbeds, quiet=args.quiet, origin=time.time())
    pid = proxy.pid
    try:
        try:
            proxy.submit(xml)
            say("submitted %s (%s, %s); deploying" % (
                args.file, plural(len(testbeds), "testbed"),
                plural(len(data.box_guids()), "element")))
            proxy.start_background()
            follow(proxy, display, until=lambda: proxy.state in ("started", "failed"))
        except KeyboardInterrupt:
            display.close()
            err("%s: no longer following; the deployment goes on in nepid (pid %s): "
                "`nepid status --root-dir %s`, `nepid stop --root-dir %s`"
                % (PROG, pid, root_dir, root_dir))
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
    out("query it:  nepid status --root-dir %s" % root_dir)
    out("stop it:   nepid stop --root-dir %s" % root_dir)
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

class _Layout(NamedTuple):
    root_dir: str
    role: str


def _testbed_roots(root_dir: str) -> Dict[int, tuple]:
    """testbed guid -> (testbed id, its root directory), from every record we have."""
    from nepi.cli.rootdir import manifest
    from nepi.core.execute import DEPLOYMENT_JSON, DESIGN_XML, EXECUTE_XML
    from nepi.util.constants import DeploymentConfiguration as DC
    from nepi.util.files import read_json
    roots: Dict[int, list] = {}
    for name in (EXECUTE_XML, DESIGN_XML):
        path = os.path.join(root_dir, name)
        if not os.path.exists(path):
            continue
        try:
            from nepi.util.parser._xml import XmlExperimentParser
            with open(path, "rb") as f:
                data = XmlExperimentParser().from_xml_to_data(f.read(), source=path)
        except Exception:
            continue
        for guid in data.testbed_guids():
            root = data.get_attribute_data(guid, DC.ROOT_DIRECTORY)
            roots.setdefault(guid, [data.get_testbed_data(guid)[0], None])
            if root not in (None, "."):
                roots[guid][1] = root if os.path.isabs(root) else os.path.join(root_dir, root)
        break
    try:
        deployment = read_json(os.path.join(root_dir, DEPLOYMENT_JSON), {}) or {}
    except ValueError:
        deployment = {}
    for key, config in deployment.items():
        try:
            guid = int(key)
        except ValueError:
            continue
        if isinstance(config, dict) and config.get(DC.ROOT_DIRECTORY):
            roots.setdefault(guid, [None, None])[1] = config[DC.ROOT_DIRECTORY]
    try:
        daemons = manifest(root_dir).get("daemons", {}) or {}
    except ValueError:
        daemons = {}
    for entry in daemons.values():
        guid = entry.get("testbed_guid") if isinstance(entry, dict) else None
        if guid is None:
            continue
        item = roots.setdefault(guid, [None, None])
        item[0] = item[0] or entry.get("testbed_id")
        item[1] = item[1] or entry.get("root_dir")
    for guid, item in roots.items():
        if item[1] is None:
            item[1] = os.path.join(root_dir, "testbeds", str(guid))
    testbeds_dir = os.path.join(root_dir, "testbeds")
    if os.path.isdir(testbeds_dir):
        for name in os.listdir(testbeds_dir):
            if name.isdigit() and int(name) not in roots:
                roots[int(name)] = [None, os.path.join(testbeds_dir, name)]
    return {g: (tid, os.path.abspath(root)) for g, (tid, root) in roots.items()}


def _layouts(root_dir: str) -> List[_Layout]:
    layouts = [_Layout(root_dir, "ec")]
    try:
        roots = _testbed_roots(root_dir)
    except Exception:
        roots = {}
    for _, (_, root) in sorted(roots.items()):
        layouts.append(_Layout(root, "testbed"))
    return layouts


def _socket_paths(run_dir: str, name: str) -> List[str]:
    """Where a daemon's socket may be: in run/, or (long paths) in the short owner-only
    directory nepi.rpc.security.socket_path uses (computed without creating it)."""
    from nepi.rpc.security import runtime_base
    digest = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:16]
    return [os.path.join(run_dir, name),
            os.path.join(runtime_base(), "nepi-%d-%s" % (os.getuid(), digest), name)]


def _runtime_files(layout: _Layout) -> List[str]:
    from nepi.rpc.layout import DaemonLayout
    dl = DaemonLayout(layout.root_dir, layout.role)
    return [dl.pid_file, dl.secret_file, dl.record_file] + \
        _socket_paths(dl.run_dir, dl.name + ".sock")


def _names_dir(cmdline: List[str], directory: str) -> bool:
    directory = os.path.abspath(directory)
    for arg in cmdline:
        for part in (arg, arg.split("=", 1)[-1]):
            if part == directory or part.startswith(directory + os.sep):
                return True
    return False


def _our_daemons(root_dir: str, roots: List[str]) -> Dict[int, str]:
    """pid -> description of every nepi daemon process of this root dir: holders of the
    pid locks whose command line names the dir, and nepi.rpc.daemon_main processes whose
    --root-dir lies in it (a daemon of another root dir is never included)."""
    import psutil
    from nepi.rpc.layout import DaemonLayout
    from nepi.rpc.pidlock import is_locked, read_pid
    found: Dict[int, str] = {}
    for root, role in [(root_dir, "ec")] + [(r, "testbed") for r in roots]:
        pid_file = DaemonLayout(root, role).pid_file
        if not is_locked(pid_file):
            continue
        pid = read_pid(pid_file)
        try:
            cmdline = psutil.Process(pid).cmdline() if pid else []
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if _names_dir(cmdline, root):
            found[pid] = "%s daemon holding %s" % ("nepid" if role == "ec" else "testbed",
                                                   pid_file)
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline", "uids"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if proc.info["pid"] == me or "nepi.rpc.daemon_main" not in cmdline:
                continue
            if proc.info["uids"] is not None and proc.info["uids"].real != os.getuid():
                continue
            if "--root-dir" not in cmdline:
                continue
            index = cmdline.index("--root-dir")
            target = cmdline[index + 1] if index + 1 < len(cmdline) else ""
            if any(os.path.abspath(target) == r or os.path.abspath(target).startswith(
                    r + os.sep) for r in [root_dir] + roots):
                found.setdefault(proc.info["pid"], "nepi daemon serving %s" % target)
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            continue
    return found


def _clean_arguments(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="clean even if nepid answers (kills it and its experiment)")


def cmd_clean(args) -> int:
    from nepi.cli.rootdir import daemon_entries
    from nepi.rpc.liveness import is_same_process, kill_process
    from nepi.rpc.manifest import Manifest
    from nepi.util.proxy import cleanup_testbed
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
    removed: List[str] = []
    problems: List[str] = []
    killed: List[str] = []
    try:
        entries = daemon_entries(root_dir)
    except ValueError as e:
        entries = []
        problems.append("manifest.json is unreadable (%s); cleaning what the pid files "
                        "show" % e)
    testbeds = _testbed_roots(root_dir)
    roots = sorted({root for _, root in testbeds.values()} |
                   {os.path.abspath(d.entry["root_dir"]) for d in entries
                    if d.entry.get("root_dir") and d.key != "ec"})

    # 1. processes: nepid first (so it cannot react to its testbeds dying), then testbeds
    for entry in entries:
        pid, start = entry.entry.get("pid"), entry.entry.get("start_time")
        if entry.alive:
            if kill_process(pid, start):
                killed.append(entry.describe().replace("still running", "killed"))
            else:
                problems.append("could not kill %s" % entry.describe())
    for pid, what in sorted(_our_daemons(root_dir, roots).items()):
        if not is_same_process(pid, None):
            continue
        if kill_process(pid, None):
            killed.append("%s, pid %s: killed" % (what, pid))
        else:
            problems.append("could not kill %s (pid %s)" % (what, pid))

    # 2. testbed leftovers (namespaces, processes, ...) through each testbed's hook
    cleaned = []
    for guid, (testbed_id, root) in sorted(testbeds.items()):
        if not testbed_id:
            continue
        try:
            cleanup_testbed(testbed_id, root)
            cleaned.append("testbed %s (%s)" % (guid, testbed_id))
        except Exception as e:
            problems.append("cleaning testbed %s (%s) failed: %s" % (guid, testbed_id, e))

    # 3. runtime files: sockets, secrets, records, pid files (never logs, traces or XML)
    from nepi.rpc.pidlock import is_locked
    for layout in _layouts(root_dir):
        files = _runtime_files(layout)
        for path in files:
            if not os.path.lexists(path):
                continue
            if path.endswith(".pid") and is_locked(path):
                problems.append("%s is still locked by a live process" % path)
                continue
            try:
                os.unlink(path)
                removed.append(path)
            except OSError as e:
                problems.append("cannot remove %s: %s" % (path, e.strerror or e))
        for directory in {os.path.dirname(p) for p in files if not p.endswith(".pid")}:
            try:
                os.rmdir(directory)      # only if now empty
            except OSError:
                pass
    for entry in entries:
        sock = entry.entry.get("socket")
        if sock and os.path.lexists(sock) and not os.path.isdir(sock):
            try:
                os.unlink(sock)
                removed.append(sock)
            except OSError as e:
                problems.append("cannot remove %s: %s" % (sock, e.strerror or e))

    # 4. the manifest: no daemon left, experiment shut down
    manifest_path = os.path.join(root_dir, "manifest.json")
    if os.path.exists(manifest_path) or entries:
        try:
            manifest = Manifest(root_dir)
            for entry in entries:
                manifest.remove(entry.key)
            manifest.set_meta(experiment_state="shutdown")
        except (OSError, ValueError) as e:
            problems.append("cannot update manifest.json: %s" % e)

    out("cleaned %s" % root_dir)
    for line in killed:
        out("  %s" % line)
    for path in removed:
        out("  removed %s" % path)
    if cleaned:
        out("  ran the cleanup of %s" % ", ".join(cleaned))
    if not killed and not removed:
        out("  no daemon or runtime file was left")
    out("kept: logs, traces, experiment.xml and execute.xml")
    for problem in problems:
        err("%s: %s" % (PROG, problem))
    return EXIT_PROBLEMS if problems else EXIT_OK


# ---- the command ------------------------------------------------------------------------

COMMANDS: Dict[str, Command] = {
    "start": Command("start nepid on a root directory (re-attaching to an experiment "
                     "found there)", _start_arguments, cmd_start),
    "status": Command("show nepid, the experiment and its testbeds", lambda p: None,
                      cmd_status),
    "stop": Command("stop the experiment, shut its daemons down and stop nepid "
                    "(logs, traces and XML are kept)", _stop_arguments, cmd_stop),
    "run": Command("submit an experiment to nepid (started if needed) and follow its "
                   "deployment", _run_arguments, cmd_run),
    "recover": Command("restart a killed nepid and re-attach it to its experiment",
                       _recover_arguments, cmd_recover),
    "clean": Command("kill leftover daemons of a root directory and remove their runtime "
                     "files and testbed leftovers", _clean_arguments, cmd_clean),
}


def _root_dir_argument(parser) -> None:
    parser.add_argument("--root-dir", required=True, metavar="DIR",
                        help="the experiment's root directory")


def build_parser() -> argparse.ArgumentParser:
    return command_parser(PROG, "The nepi experiment-controller daemon and its root "
                                "directories.", COMMANDS, _root_dir_argument)


def main(argv: Optional[List[str]] = None) -> int:
    return command_main(PROG, build_parser(), COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())

"""``nepid timeline --root-dir DIR -o FILE.svg|.png|.pdf``: the journal of an experiment
root dir drawn on one time axis (nepi.cli.pictures.render_timeline).

The journal, ``ROOT/journal.jsonl`` (nepi.core.journal), holds one JSON object per line
(time, event, state, testbed, guid, phase, message). It may be being written while we
read it: a partial last line is left out, and so is any line that is not a JSON object.
If the design (``ROOT/experiment.xml``) can be read, rows are named after its testbeds and
applications.
"""

import argparse
import os
from typing import Dict, List

from nepi.cli.common import EXIT_OK, EXIT_USAGE, CliError, load_data, out, plural
from nepi.cli.pictures import (MAX_APP_ROWS, Timeline, Topology, clean_text, output_format,
                               render_timeline, require, write_picture)
from nepi.util.rootfiles import DESIGN_XML

HELP = ("draw the experiment's journal on one time axis to FILE.svg, .png or .pdf: "
        "each testbed's deployment phases, each application's lifetime, daemons lost and "
        "recovered, policies applied")


def read_events(root_dir: str) -> List[dict]:
    """The journal's events (nepi.core.journal.read: a half-written last line is left
    out); CliError (exit 2) if the root dir has no journal or it cannot be read."""
    from nepi.core.journal import journal_path, read
    path = journal_path(root_dir)
    if not os.path.isfile(path):
        raise CliError("no journal in %s (%s): was an experiment run there by nepid?"
                       % (root_dir, os.path.basename(path)), EXIT_USAGE)
    try:
        return read(path)[0]
    except OSError as e:
        raise CliError("cannot read %s: %s" % (path, e.strerror or e), EXIT_USAGE) from e


def design_names(root_dir: str) -> Dict[str, str]:
    """Row labels from the design kept in the root dir, {} if there is none."""
    path = os.path.join(root_dir, DESIGN_XML)
    if not os.path.exists(path):
        return {}
    try:
        topo = Topology(load_data(path))
    except Exception:   # a broken design does not stop the timeline: rows keep their guids
        return {}
    names = {}
    for testbed in topo.testbeds:
        label = topo.label(testbed) if topo.data.is_testbed_data(testbed) else None
        names["testbed:%d" % testbed] = "%s %d%s" % (topo.testbed_id(testbed), testbed,
                                                     " \u00b7 %s" % label if label else "")
    for guid, role in topo.role.items():
        if role == "app":
            name = topo.label(guid) or "app %d" % guid
            names["app:%d" % guid] = "%s: %s" % (name, clean_text(topo.app_text(guid), 30))
    return names


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number of rows (0 or more), got %r"
                                         % text)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, metavar="FILE.svg|.png|.pdf",
                        help="the picture to write; its suffix gives the format")
    parser.add_argument("--max-app-rows", type=positive, default=MAX_APP_ROWS, metavar="N",
                        help="one row per application up to N applications, else one "
                             "summary row per testbed (default %d)" % MAX_APP_ROWS)


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args.output)
    root_dir = os.path.abspath(args.root_dir)
    if not os.path.isdir(root_dir):
        raise CliError("%s is not a directory" % root_dir, EXIT_USAGE)
    timeline = Timeline(read_events(root_dir))
    if not timeline.events:
        raise CliError("the journal of %s holds no event to draw yet" % root_dir)
    require("matplotlib", "pip install matplotlib")
    picture = render_timeline(timeline, fmt, design_names(root_dir), args.max_app_rows,
                              "experiment timeline \u00b7 %s" % clean_text(root_dir, 80))
    write_picture(args.output, picture)
    out("%s: %s, %s, %s drawn to %s"
        % (root_dir, plural(len(timeline.events), "event"),
           plural(len(timeline.testbeds()), "testbed"),
           plural(len(timeline.apps), "application"), args.output))
    return EXIT_OK

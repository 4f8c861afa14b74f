"""Pictures of an experiment: its topology (graphviz) and its timeline (matplotlib).

``nepi plot DESIGN.xml -o FILE.svg|.png|.pdf`` draws the design: each testbed a cluster,
each node a box listing its interfaces and their addresses, switches and channels as hubs,
point-to-point links as edges, applications as notes on their node, and the connections
between testbeds (TunChannels, file descriptors) as bold dashed red edges. Boxes that are
neither (ns-3 protocols, queues, models...) are folded into the node, interface or channel
they belong to. Large designs switch to a compact drawing and a force-directed layout.

``nepid timeline`` (nepi.cli.timeline_cmd) reads the journal of a root dir and calls
:func:`render_timeline`: one row per testbed with its deployment phases, one per
application with its lifetime, and markers for daemon losses, recoveries, policy decisions
and experiment state changes.

Both read untrusted text (labels, commands, journal messages): every string drawn is
shortened and stripped of control characters, and graphviz labels are HTML-escaped.
"""

import argparse
import html
import os
from typing import Dict, List, Optional, Tuple

from nepi.cli.common import EXIT_OK, EXIT_USAGE, CliError, load_data, out

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
ENGINES = ("dot", "neato", "fdp", "sfdp", "twopi", "circo")

# above this many nodes (and hubs) the drawing gets compact: addresses only, no routes, no
# folded boxes, applications counted on their node instead of drawn as notes
LARGE = 24
MAX_TEXT = 40            # characters of a label, command, address list... drawn at most
MAX_APP_NOTES = 3        # notes drawn on one node; more are collapsed into one note

CROSS_COLOUR = "#d62728"
TESTBED_COLOURS = {"netns": "#eaf2fb", "ns3": "#eaf7ea", "linux": "#fdf6e3",
                   "mock": "#f2f2f2", "mock2": "#f2f2f2"}
NODE_HEADER = "#cfe0f3"
SWITCH_COLOUR = "#ffe4b5"
CHANNEL_COLOUR = "#e3d7f4"
TUNNEL_COLOUR = "#fbd9d3"
APP_COLOUR = "#fffbd1"


def output_format(path: str) -> str:
    """``svg``, ``png`` or ``pdf`` from the suffix of ``path``; CliError (exit 2) otherwise."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise CliError("cannot tell the picture format of %s: give -o a file name ending in "
                       "%s" % (path, ", ".join(sorted(FORMATS))), EXIT_USAGE)
    return FORMATS[suffix]


def clean_text(value, limit: int = MAX_TEXT) -> str:
    """``value`` as one short printable line (untrusted text from designs and journals)."""
    text = "".join(c if c.isprintable() else " " for c in str(value))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _h(value, limit: int = MAX_TEXT) -> str:
    """Cleaned and escaped for graphviz HTML labels (HTML, and a backslash doubled:
    graphviz would expand ``\\N`` or ``\\G`` in a label)."""
    return html.escape(clean_text(value, limit)).replace("\\", "\\\\")


def write_picture(path: str, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file (no half-written picture)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError("cannot write %s: no directory %s" % (path, directory), EXIT_USAGE)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CliError("cannot write %s: %s" % (path, e.strerror or e), EXIT_USAGE) from e


# ---- the design as a topology -------------------------------------------------------------

NODE, DEVICE, SWITCH, CHANNEL, TUNNEL, APP, OTHER = ("node", "device", "switch", "channel",
                                                      "tunnel", "app", "other")


def _categories(testbed_id: str) -> Dict[str, str]:
    """factory id -> category (lower case) of a testbed, {} if it cannot be loaded."""
    try:
        from nepi.core.metadata import Metadata
        info = Metadata(testbed_id).info.factories_info
    except Exception:   # unknown or broken testbed: classify by factory name only
        return {}
    return {fid: str(finfo.get("category") or "").lower() for fid, finfo in info.items()}


def role_of(factory_id: str, category: str = "") -> str:
    """What a box is in the picture, from its testbed category and its factory id."""
    name = factory_id.rsplit("::", 1)[-1].lower()
    if category == "tunnels" or "tunchannel" in name:
        return TUNNEL
    if "switch" in name or name == "hub":
        return SWITCH
    if category in ("nodes", "topology") or name == "node":
        return NODE
    if category == "devices" or "interface" in name or name.endswith(("netdevice", "bridge")):
        return DEVICE
    if category == "channels" or name.endswith("channel"):
        return CHANNEL
    if category == "applications" or "application" in name:
        return APP
    return OTHER


def short_factory(factory_id: str) -> str:
    """``ns3::PointToPointNetDevice`` -> ``PointToPoint``, ``P2PNodeInterface`` -> ``P2P``."""
    name = factory_id.rsplit("::", 1)[-1]
    if name == "NodeInterface":
        return "Interface"
    for suffix in ("NodeInterface", "NetDevice", "Interface"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name


class Topology:
    """The boxes of an ExperimentData sorted into what the picture draws."""

    def __init__(self, data) -> None:
        self.data = data
        # with the testbed guids boxes name that are no testbed (`nepi validate` says so)
        self.testbeds: List[int] = sorted(set(data.testbed_guids()) | {
            data.get_box_data(guid)[0] for guid in data.box_guids()})
        self.role: Dict[int, str] = {}
        categories: Dict[str, Dict[str, str]] = {}
        for guid in data.box_guids():
            testbed_guid, factory_id = data.get_box_data(guid)
            testbed_id = self.testbed_id(testbed_guid)
            if testbed_id not in categories:
                categories[testbed_id] = _categories(testbed_id)
            self.role[guid] = role_of(factory_id, categories[testbed_id].get(factory_id, ""))
        self.links: List[Tuple[int, str, int, str]] = []   # each connection once
        self.peers: Dict[int, List[int]] = {guid: [] for guid in self.role}
        seen = set()
        for guid in data.box_guids():
            for connector, other, other_connector in data.get_connection_data(guid):
                if other not in self.role:
                    continue    # a dangling connection: `nepi validate` reports it
                key = frozenset([(guid, connector), (other, other_connector)])
                if key in seen:
                    continue
                seen.add(key)
                self.links.append((guid, connector, other, other_connector))
                self.peers[guid].append(other)
                self.peers[other].append(guid)
        self.node_of: Dict[int, int] = {}     # device or application -> its node
        for guid, role in self.role.items():
            if role in (DEVICE, APP):
                nodes = [p for p in self.peers[guid] if self.role[p] == NODE]
                if nodes:
                    self.node_of[guid] = nodes[0]
        for guid, role in self.role.items():  # an application hanging on an application
            if role == APP and guid not in self.node_of:
                for p in self.peers[guid]:
                    if p in self.node_of and self.role[p] == APP:
                        self.node_of[guid] = self.node_of[p]
                        break
        self.anchor: Dict[int, int] = {guid: self._anchor(guid) for guid, role in
                                       self.role.items() if role == OTHER}

    def testbed_id(self, testbed_guid: int) -> str:
        if self.data.is_testbed_data(testbed_guid):
            return self.data.get_testbed_data(testbed_guid)[0]
        return "?"

    def testbed_of(self, guid: int) -> int:
        return self.data.get_box_data(guid)[0]

    def factory(self, guid: int) -> str:
        return self.data.get_box_data(guid)[1]

    def label(self, guid: int) -> Optional[str]:
        label = self.data.get_attribute_data(guid, "label")
        return label if isinstance(label, str) and label else None

    def attribute(self, guid: int, name: str):
        return self.data.get_attribute_data(guid, name)

    def _anchor(self, guid: int) -> Optional[int]:
        """The device, node, channel or switch an OTHER box belongs to (breadth first)."""
        preference = {DEVICE: 0, NODE: 1, CHANNEL: 2, SWITCH: 3, TUNNEL: 4}
        seen, frontier = {guid}, [guid]
        while frontier:
            found = [p for g in frontier for p in self.peers[g]
                     if self.role[p] in preference and p not in seen]
            if found:
                return min(found, key=lambda p: (preference[self.role[p]], p))
            nxt = []
            for g in frontier:
                for p in self.peers[g]:
                    if p not in seen and self.role[p] == OTHER:
                        seen.add(p)
                        nxt.append(p)
            frontier = nxt
        return None

    def of_role(self, role: str, testbed_guid: Optional[int] = None) -> List[int]:
        return [g for g, r in sorted(self.role.items()) if r == role and
                (testbed_guid is None or self.testbed_of(g) == testbed_guid)]

    def folded(self, guid: int) -> List[int]:
        """The OTHER boxes drawn inside ``guid``."""
        return [g for g, a in sorted(self.anchor.items()) if a == guid]

    def devices_of(self, node: int) -> List[int]:
        return [g for g, n in sorted(self.node_of.items())
                if n == node and self.role[g] == DEVICE]

    def apps_of(self, node: int) -> List[int]:
        return [g for g, n in sorted(self.node_of.items()) if n == node and self.role[g] == APP]

    def addresses(self, guid: int) -> List[str]:
        found = []
        for address, prefix, _ in self.data.get_address_data(guid):
            if address:
                found.append("%s/%s" % (address, prefix) if prefix is not None else
                             str(address))
        return found

    def routes(self, guid: int) -> List[str]:
        found = []
        for dest, prefix, nexthop, _, device in self.data.get_route_data(guid):
            text = "%s/%s" % (dest, prefix)
            if nexthop and nexthop != "None":
                text += " via %s" % nexthop
            if device:
                text += " dev %s" % device
            found.append(text)
        return found

    def app_text(self, guid: int) -> str:
        """What an application does: its command, or its factory and remote."""
        command = self.attribute(guid, "command")
        if isinstance(command, str) and command:
            return command
        text = short_factory(self.factory(guid))
        remote = self.attribute(guid, "Remote")
        return "%s %s" % (text, remote) if remote else text


class TopologyPicture:
    """Builds the graphviz graph of a Topology."""

    def __init__(self, topo: Topology, engine: Optional[str] = None,
                 compact: Optional[bool] = None) -> None:
        self.topo = topo
        drawn = len(topo.of_role(NODE)) + len(topo.of_role(SWITCH)) + \
            len(topo.of_role(CHANNEL))
        self.compact = drawn > LARGE if compact is None else compact
        self.hub = self._star_hub()
        self.engine = engine or self._engine(drawn)
        self.clusters = self.engine in ("dot", "fdp")

    def _engine(self, drawn: int) -> str:
        """dot (left to right, clusters) for small designs; for large ones twopi around the
        hub of a star, fdp (which keeps the testbed clusters) for several testbeds, else
        sfdp."""
        if drawn <= LARGE:
            return "dot"
        if len(self.topo.testbeds) > 1:
            return "fdp"
        return "twopi" if self.hub is not None else "sfdp"

    def _star_hub(self) -> Optional[str]:
        """The switch or channel joining at least half of the nodes, if any."""
        topo = self.topo
        nodes = len(topo.of_role(NODE))
        best = None
        for guid in topo.of_role(SWITCH) + topo.of_role(CHANNEL):
            degree = len(set(p.split(":")[0] for p in self._drawn_peers(guid)))
            if degree >= max(8, nodes / 2) and (best is None or degree > best[0]):
                best = (degree, "%s%d" % (topo.role[guid][0], guid))
        return best[1] if best else None

    # ids of what is drawn
    def endpoint(self, guid: int) -> Optional[str]:
        """The graphviz node (and port) a box's connections are drawn from."""
        role = self.topo.role[guid]
        if role == NODE:
            return "n%d" % guid
        if role == DEVICE:
            node = self.topo.node_of.get(guid)
            return "n%d:p%d" % (node, guid) if node is not None else "d%d" % guid
        if role in (SWITCH, CHANNEL, TUNNEL):
            return "%s%d" % (role[0], guid)
        if role == APP:
            node = self.topo.node_of.get(guid)
            if node is not None and self.collapsed_apps(node):
                return "n%d" % node if self.compact else "apps%d" % node
            return "a%d" % guid
        anchor = self.topo.anchor.get(guid)
        return self.endpoint(anchor) if anchor is not None else "o%d" % guid

    def collapsed_apps(self, node: int) -> bool:
        return self.compact or len(self.topo.apps_of(node)) > MAX_APP_NOTES

    def graph(self):
        import graphviz
        topo = self.topo
        g = graphviz.Graph("experiment", engine=self.engine)
        g.attr(fontname="Helvetica", fontsize="11", newrank="true", compound="true",
               outputorder="edgesfirst")
        if self.engine == "dot":
            g.attr(rankdir="LR", nodesep="0.25", ranksep="0.6")
        else:
            g.attr(overlap="prism" if self.engine in ("neato", "sfdp") else "false",
                   splines="line", sep="+6")
            if self.engine == "twopi" and self.hub:
                g.attr(root=self.hub)
        g.attr("node", fontname="Helvetica", fontsize="10")
        g.attr("edge", fontname="Helvetica", fontsize="9")
        n_nodes = len(topo.of_role(NODE))
        g.attr(label=self._title(n_nodes), labelloc="t", fontsize="14")
        for testbed in topo.testbeds:
            if self.clusters:
                with g.subgraph(name="cluster_%d" % testbed) as sub:
                    sub.attr(label="<<B>%s</B>>" % self._testbed_label(testbed),
                             style="rounded,filled", color="#7f7f7f", penwidth="1.2",
                             fillcolor=TESTBED_COLOURS.get(topo.testbed_id(testbed),
                                                           "#f5f5f5"),
                             fontsize="12", margin="12",
                             **{"class": "testbed"})
                    self._boxes(sub, testbed)
            else:
                self._boxes(g, testbed)
        self._edges(g)
        return g

    def _title(self, n_nodes: int) -> str:
        topo = self.topo
        parts = ["%d testbed%s" % (len(topo.testbeds), "" if len(topo.testbeds) == 1 else "s"),
                 "%d node%s" % (n_nodes, "" if n_nodes == 1 else "s")]
        n_apps = len(topo.of_role(APP))
        if n_apps:
            parts.append("%d application%s" % (n_apps, "" if n_apps == 1 else "s"))
        if not self.clusters:
            parts.append(", ".join(self._testbed_label(t, html_=False) for t in topo.testbeds))
        return "<<B>%s</B>>" % _h(" \u00b7 ".join(parts), 200)

    def _testbed_label(self, testbed: int, html_: bool = True) -> str:
        topo = self.topo
        text = "%s %d" % (topo.testbed_id(testbed), testbed)
        label = topo.label(testbed)
        if label:
            text += " \u00b7 %s" % clean_text(label)
        return _h(text, 80) if html_ else text

    def _boxes(self, g, testbed: int) -> None:
        topo = self.topo
        for node in topo.of_role(NODE, testbed):
            g.node("n%d" % node, label=self._node_label(node), shape="plaintext",
                   margin="0", **{"class": "node-box"})
            self._app_notes(g, node)
        for guid in topo.of_role(DEVICE, testbed):
            if guid not in topo.node_of:
                g.node("d%d" % guid, label=self._device_label(guid), shape="plaintext",
                       margin="0", **{"class": "device"})
        for guid in topo.of_role(SWITCH, testbed):
            g.node("s%d" % guid, label=self._hub_label(guid), shape="ellipse",
                   style="filled", fillcolor=SWITCH_COLOUR, **{"class": "switch"})
        for guid in topo.of_role(CHANNEL, testbed):
            if not self._channel_as_edge(guid):
                g.node("c%d" % guid, label=self._hub_label(guid), shape="hexagon",
                       style="filled", fillcolor=CHANNEL_COLOUR, **{"class": "channel"})
        for guid in topo.of_role(TUNNEL, testbed):
            g.node("t%d" % guid, label=self._hub_label(guid), shape="octagon",
                   style="filled", fillcolor=TUNNEL_COLOUR, fontsize="9",
                   margin="0.04,0.02", **{"class": "tunnel"})
        for guid in topo.of_role(APP, testbed):
            if guid not in topo.node_of:
                g.node("a%d" % guid, label=self._app_label([guid]), shape="note",
                       style="filled", fillcolor=APP_COLOUR, fontsize="9",
                       **{"class": "application"})
        for guid in topo.of_role(OTHER, testbed):
            if topo.anchor.get(guid) is None:
                g.node("o%d" % guid, label="<%s %d>" % (_h(short_factory(topo.factory(guid))),
                                                        guid),
                       shape="box", style="rounded,dashed", fontsize="9",
                       **{"class": "other"})

    def _name(self, guid: int, default: str) -> str:
        label = self.topo.label(guid)
        return "%s %d" % (clean_text(label, 24), guid) if label else "%s %d" % (default, guid)

    def _node_label(self, node: int) -> str:
        topo = self.topo
        header = "<B>%s</B>" % _h(self._name(node, short_factory(topo.factory(node))))
        hostname = topo.attribute(node, "hostname")
        if hostname:
            header += "<BR/><FONT POINT-SIZE=\"8\">%s</FONT>" % _h(hostname)
        if self.compact and topo.apps_of(node):
            n = len(topo.apps_of(node))
            header += " <FONT POINT-SIZE=\"8\">+%d app%s</FONT>" % (n, "" if n == 1 else "s")
        rows = ["<TR><TD BGCOLOR=\"%s\">%s</TD></TR>" % (NODE_HEADER, header)]
        for dev in topo.devices_of(node):
            rows.append("<TR><TD PORT=\"p%d\" ALIGN=\"LEFT\" BALIGN=\"LEFT\">%s</TD></TR>"
                        % (dev, self._device_text(dev)))
        if not self.compact:
            extra = self._folded_text(node)
            if extra:
                rows.append(self._small_row(extra))
            for route in topo.routes(node)[:4]:
                rows.append(self._small_row("\u2192 " + route))
            if len(topo.routes(node)) > 4:
                rows.append(self._small_row("\u2026 %d more routes"
                                            % (len(topo.routes(node)) - 4)))
        return "<<TABLE BORDER=\"0\" CELLBORDER=\"1\" CELLSPACING=\"0\" CELLPADDING=\"3\" " \
               "BGCOLOR=\"white\" COLOR=\"#4a6a8a\">%s</TABLE>>" % "".join(rows)

    @staticmethod
    def _small_row(text: str) -> str:
        return "<TR><TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"8\" COLOR=\"#555555\">%s</FONT>" \
               "</TD></TR>" % _h(text, 60)

    def _device_text(self, dev: int) -> str:
        topo = self.topo
        addresses = topo.addresses(dev)
        if self.compact:
            return _h(", ".join(addresses) or self._name(dev, short_factory(topo.factory(dev))))
        lines = ["<FONT POINT-SIZE=\"8\" COLOR=\"#555555\">%s</FONT>"
                 % _h(self._name(dev, short_factory(topo.factory(dev))))]
        lines.extend("<B>%s</B>" % _h(a) for a in addresses[:4])
        if len(addresses) > 4:
            lines.append("\u2026 %d more" % (len(addresses) - 4))
        extra = self._folded_text(dev)
        if extra:
            lines.append("<FONT POINT-SIZE=\"8\" COLOR=\"#555555\">%s</FONT>"
                         % _h(extra, 50))
        return "<BR/>".join(lines)

    def _folded_text(self, guid: int) -> str:
        """The boxes folded into ``guid``, short: ``Ipv4, Arp, Icmpv4``."""
        names = []
        for g in self.topo.folded(guid):
            name = short_factory(self.topo.factory(g))
            for suffix in ("L3Protocol", "L4Protocol"):
                if name.endswith(suffix) and len(name) > len(suffix):
                    name = name[:-len(suffix)]
            names.append(name)
        return ", ".join(names)

    def _device_label(self, dev: int) -> str:
        return "<<TABLE BORDER=\"0\" CELLBORDER=\"1\" CELLSPACING=\"0\" CELLPADDING=\"3\" " \
               "BGCOLOR=\"white\"><TR><TD ALIGN=\"LEFT\" BALIGN=\"LEFT\">%s</TD></TR>" \
               "</TABLE>>" % self._device_text(dev)

    def _hub_label(self, guid: int) -> str:
        topo = self.topo
        text = "<B>%s</B>" % _h(self._name(guid, short_factory(topo.factory(guid))))
        if not self.compact:
            extra = self._folded_text(guid)
            if extra:
                text += "<BR/><FONT POINT-SIZE=\"8\">%s</FONT>" % _h(extra, 50)
        return "<%s>" % text

    def _app_label(self, apps: List[int]) -> str:
        topo = self.topo
        if len(apps) > MAX_APP_NOTES:
            lines = ["<B>%d applications</B>" % len(apps)]
            lines += ["%d: %s" % (a, _h(topo.app_text(a), 28)) for a in apps[:2]]
            lines.append("\u2026 %s" % _h(", ".join(str(a) for a in apps[2:]), 40))
        else:
            lines = ["<B>%s</B>" % _h(self._name(a, short_factory(topo.factory(a)))) +
                     "<BR/>" + _h(topo.app_text(a), 32) for a in apps]
        return "<%s>" % "<BR/>".join(lines)

    def _app_notes(self, g, node: int) -> None:
        topo = self.topo
        apps = topo.apps_of(node)
        if not apps or self.compact:
            return
        note = dict(shape="note", style="filled", fillcolor=APP_COLOUR, fontsize="9",
                    **{"class": "application"})
        edge = dict(style="dashed", color="#9a8c3a", arrowhead="none", len="0.6",
                    **{"class": "application"})
        if self.collapsed_apps(node):
            g.node("apps%d" % node, label=self._app_label(apps), **note)
            g.edge("apps%d" % node, "n%d" % node, **edge)
            return
        for app in apps:
            g.node("a%d" % app, label=self._app_label([app]), **note)
            g.edge("a%d" % app, "n%d" % node, **edge)

    def _drawn_peers(self, guid: int) -> List[str]:
        found = []
        me = self.endpoint(guid)
        for a, _, b, _ in self.topo.links:
            if guid in (a, b):
                other = b if a == guid else a
                if self.topo.role[other] == OTHER:
                    continue     # folded into the channel
                found.append(self.endpoint(other))
        return [f for f in found if f != me]

    def _channel_as_edge(self, channel: int) -> bool:
        """A channel joining exactly two interfaces is drawn as the link between them."""
        peers = self._drawn_peers(channel)
        return len(peers) == 2 and all(self.topo.role[p] == DEVICE for p in
                                       self._peer_guids(channel)) \
            and not self.topo.folded(channel)

    def _peer_guids(self, guid: int) -> List[int]:
        return [b if a == guid else a for a, _, b, _ in self.topo.links if guid in (a, b)]

    def _edges(self, g) -> None:
        edges: List[Tuple[str, str, dict]] = []
        self._collect_edges(edges)
        order = self._bfs_order(edges)
        for ea, eb, attrs in edges:
            ka, kb = order.get(ea.split(":")[0], 0), order.get(eb.split(":")[0], 0)
            if kb < ka:      # dot ranks tail before head: draw outwards from the first node
                ea, eb = eb, ea
            g.edge(ea, eb, **attrs)

    def _bfs_order(self, edges) -> Dict[str, int]:
        """Each drawn box's rank in a breadth-first walk from the first node (by guid)."""
        adjacent: Dict[str, List[str]] = {}
        for ea, eb, _ in edges:
            a, b = ea.split(":")[0], eb.split(":")[0]
            adjacent.setdefault(a, []).append(b)
            adjacent.setdefault(b, []).append(a)
        starts = ["n%d" % guid for guid in self.topo.of_role(NODE)] + sorted(adjacent)
        order: Dict[str, int] = {}
        for start in starts:
            if start in order:
                continue
            order[start] = len(order)
            queue = [start]
            while queue:
                current = queue.pop(0)
                for nxt in adjacent.get(current, ()):
                    if nxt not in order:
                        order[nxt] = len(order)
                        queue.append(nxt)
        return order

    def _collect_edges(self, edges: list) -> None:
        topo = self.topo
        drawn = set()
        for a, ca, b, cb in topo.links:
            ra, rb = topo.role[a], topo.role[b]
            if {ra, rb} == {NODE, DEVICE} and topo.node_of.get(a if ra == DEVICE else b) == \
                    (b if ra == DEVICE else a):
                continue    # the interface is a row of its node
            if APP in (ra, rb) and topo.node_of.get(a if ra == APP else b) is not None:
                continue    # the note is attached to its node
            if (ra == CHANNEL and self._channel_as_edge(a)) or \
                    (rb == CHANNEL and self._channel_as_edge(b)):
                continue    # drawn below as one link
            ea, eb = self.endpoint(a), self.endpoint(b)
            if ea == eb:
                continue    # folded into the same box
            key = frozenset([ea, eb])
            if key in drawn:
                continue
            drawn.add(key)
            ta, tb = topo.testbed_of(a), topo.testbed_of(b)
            if ta != tb:
                edges.append((ea, eb, self._cross_style(a, ca, b, cb)))
            elif TUNNEL in (ra, rb) or "fd" in (ca.strip("<>-"), cb.strip("<>-")):
                edges.append((ea, eb, {"style": "dotted", "color": "#b03a2e",
                                      "penwidth": "1.2", "class": "tunnel-link"}))
            elif ra == DEVICE and rb == DEVICE:
                edges.append((ea, eb, {"penwidth": "1.8", "color": "#1f3b57",
                                      "class": "link"}))
            else:
                edges.append((ea, eb, {"color": "#5a5a5a", "class": "link"}))
        for channel in topo.of_role(CHANNEL):
            if self._channel_as_edge(channel):
                ea, eb = self._drawn_peers(channel)
                label = "" if self.compact else \
                    "<<FONT COLOR=\"#6a4c93\">%s</FONT>>" % _h(short_factory(
                        topo.factory(channel)) + " %d" % channel)
                edges.append((ea, eb, {"penwidth": "1.8", "color": "#6a4c93",
                                      "label": label, "class": "link channel"}))

    def _cross_style(self, a: int, ca: str, b: int, cb: str) -> dict:
        topo = self.topo
        text = ca if ca == cb else "%s \u2194 %s" % (ca, cb)
        label = "%s\n%s %d \u2194 %s %d" % (text, topo.testbed_id(topo.testbed_of(a)),
                                            topo.testbed_of(a),
                                            topo.testbed_id(topo.testbed_of(b)),
                                            topo.testbed_of(b))
        return dict(style="bold,dashed", color=CROSS_COLOUR, penwidth="2.5",
                    fontcolor=CROSS_COLOUR, label="<%s>" % "<BR/>".join(
                        "<B>%s</B>" % _h(line) if i == 0 else _h(line)
                        for i, line in enumerate(label.split("\n"))),
                    len="2.0", weight="0", **{"class": "cross-testbed"})


def render_graph(g, fmt: str) -> bytes:
    """The picture of a graphviz graph; CliError if graphviz is missing or fails."""
    import graphviz
    try:
        return g.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound as e:
        raise CliError("graphviz's `%s` program was not found: install graphviz (Debian: "
                       "apt-get install graphviz)" % g.engine) from e
    except graphviz.CalledProcessError as e:
        detail = (e.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise CliError("graphviz (%s) failed: %s" % (g.engine, clean_text(
            detail[-1] if detail else e, 200))) from e


def topology_picture(data, fmt: str, engine: Optional[str] = None,
                     compact: Optional[bool] = None) -> bytes:
    """The picture (bytes in ``fmt``) of an ExperimentData."""
    return render_graph(TopologyPicture(Topology(data), engine, compact).graph(), fmt)


def require(module: str, hint: str) -> None:
    """CliError saying how to install ``module`` if it cannot be imported."""
    import importlib
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise CliError("the Python package %s is missing: %s" % (module, hint)) from e


# ---- nepi plot ----------------------------------------------------------------------------

def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.xml", help="experiment design file ('-' reads "
                                                         "stdin)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.svg|.png|.pdf",
                        help="the picture to write; its suffix gives the format")
    parser.add_argument("--layout", choices=ENGINES, metavar="ENGINE",
                        help="graphviz layout (%s; default: dot for small designs, sfdp or "
                             "fdp for large ones)" % ", ".join(ENGINES))
    detail = parser.add_mutually_exclusive_group()
    detail.add_argument("--compact", dest="compact", action="store_const", const=True,
                        help="addresses only: no routes, folded boxes or application notes "
                             "(the default above %d nodes)" % LARGE)
    detail.add_argument("--detailed", dest="compact", action="store_const", const=False,
                        help="every detail even for a large design")


def cmd_plot(args: argparse.Namespace) -> int:
    fmt = output_format(args.output)
    require("graphviz", "pip install graphviz (and the graphviz programs: apt-get install "
                        "graphviz)")
    data = load_data(args.file)
    picture = TopologyPicture(Topology(data), args.layout, args.compact)
    write_picture(args.output, render_graph(picture.graph(), fmt))
    topo = picture.topo
    out("%s: %d testbed%s, %d node%s drawn (%s layout%s) to %s"
        % (args.file, len(topo.testbeds), "" if len(topo.testbeds) == 1 else "s",
           len(topo.of_role(NODE)), "" if len(topo.of_role(NODE)) == 1 else "s",
           picture.engine, ", compact" if picture.compact else "", args.output))
    return EXIT_OK


# ---- the timeline of a run ----------------------------------------------------------------

# the deployment phases of a testbed, in the order they run (colours follow this order)
PHASES = ("create_controller", "program", "do_setup", "do_create", "do_connect_init",
          "do_connect_compl", "do_preconfigure", "program_cross", "do_configure",
          "do_cross_connect", "do_cross_connect_init", "do_cross_connect_compl",
          "do_prestart", "start", "shutdown")
MAX_APP_ROWS = 40          # more applications than this: one summary row per testbed
MARKER_COLOURS = {"lost": "#d62728", "restarted": "#2ca02c", "reconnected": "#17becf",
                  "recovered": "#1f77b4", "Fail": "#8c1c13", "Recover": "#9467bd",
                  "Restart": "#ff7f0e"}
MARKER_SYMBOLS = {"lost": "X", "restarted": "o", "reconnected": "o", "recovered": "o",
                  "Fail": "s", "Recover": "s", "Restart": "s"}
EXPERIMENT_COLOURS = {"deploying": "#9ecae1", "started": "#a1d99b", "failed": "#fc9272",
                      "stopping": "#fdd0a2", "stopped": "#d9d9d9", "shutting_down": "#fdae6b",
                      "shutdown": "#bdbdbd", "recovered": "#c7e9c0"}


class Span:
    def __init__(self, start: float, end: Optional[float], state: str = "") -> None:
        self.start, self.end, self.state = start, end, state

    def finish(self, end: float, state: str) -> None:
        self.end, self.state = end, state


class Timeline:
    """Spans and markers read from journal events (dicts as ``nepi.core.journal`` writes
    them: time, event, state, testbed, guid, phase, message); bad events are skipped."""

    def __init__(self, events: List[dict]) -> None:
        good = [e for e in (_event(e) for e in events) if e is not None]
        good.sort(key=lambda e: e["time"])
        self.events = good
        self.t0 = good[0]["time"] if good else 0.0
        self.t_end = good[-1]["time"] if good else 0.0
        self.phases: Dict[Optional[int], List[Tuple[str, Span]]] = {}
        self.apps: Dict[int, List[Span]] = {}
        self.app_testbed: Dict[int, Optional[int]] = {}
        self.experiment: List[Tuple[float, str]] = []      # (time, state)
        self.markers: List[Tuple[float, str, str, Optional[int]]] = []  # time, kind, state, tb
        open_phases: Dict[Tuple[Optional[int], str], Span] = {}
        for e in good:
            t, kind, state, testbed = e["time"], e["event"], e["state"], e["testbed"]
            if kind == "phase" and e["phase"]:
                key = (testbed, e["phase"])
                if state == "running":
                    span = Span(t, None, "running")
                    open_phases[key] = span
                    self.phases.setdefault(testbed, []).append((e["phase"], span))
                elif key in open_phases:
                    open_phases.pop(key).finish(t, state)
                else:   # an end without a start: it began when the last phase ended
                    spans = self.phases.setdefault(testbed, [])
                    ends = [s.end for _, s in spans if s.end is not None and s.end <= t]
                    spans.append((e["phase"], Span(max(ends) if ends else t, t, state)))
            elif kind == "application" and e["guid"] is not None:
                spans = self.apps.setdefault(e["guid"], [])
                if testbed is not None or e["guid"] not in self.app_testbed:
                    self.app_testbed[e["guid"]] = testbed
                if state == "started":
                    spans.append(Span(t, None, "started"))
                elif spans and spans[-1].end is None:
                    spans[-1].finish(t, state)
                else:
                    spans.append(Span(t, t, state))
            elif kind == "experiment":
                self.experiment.append((t, state))
            elif kind in ("daemon", "policy"):
                self.markers.append((t, kind, state, testbed))

    def testbeds(self) -> List[int]:
        found = {tb for tb in self.phases if tb is not None}
        found |= {tb for _, _, _, tb in self.markers if tb is not None}
        found |= {tb for tb in self.app_testbed.values() if tb is not None}
        return sorted(found)

    def rel(self, t: float) -> float:
        return t - self.t0

    def end_of(self, span: Span) -> float:
        return span.end if span.end is not None else self.t_end

    def deployment_end(self) -> Optional[float]:
        """When the deployment was over: the experiment's first ``started``, else the end
        of the last ``start`` phase."""
        for t, state in self.experiment:
            if state == "started":
                return t
        ends = [self.end_of(span) for spans in self.phases.values() for name, span in spans
                if name == "start"]
        return max(ends) if ends else None


def _event(raw) -> Optional[dict]:
    """A journal event with checked types, or None if it is unusable."""
    if not isinstance(raw, dict):
        return None
    t = raw.get("time")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t != t or \
            abs(t) == float("inf"):
        return None

    def number(name):
        value = raw.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def text(name):
        value = raw.get(name)
        return clean_text(value, 60) if value is not None else ""

    return {"time": float(t), "event": text("event"), "state": text("state"),
            "testbed": number("testbed"), "guid": number("guid"),
            "phase": text("phase"), "message": text("message")}


def _phase_colours(names: List[str]) -> Dict[str, tuple]:
    import matplotlib
    cmap = matplotlib.colormaps["tab20"]
    known = [p for p in PHASES] + sorted(set(names) - set(PHASES))
    return {name: cmap(i % 20) for i, name in enumerate(known)}


def render_timeline(timeline: Timeline, fmt: str, names: Optional[Dict[str, str]] = None,
                    max_app_rows: int = MAX_APP_ROWS, title: str = "") -> bytes:
    """The picture (bytes in ``fmt``) of a Timeline. ``names``: ``testbed:GUID`` and
    ``app:GUID`` -> a readable row label (from the design)."""
    import io

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = names or {}
    if not timeline.events:
        raise CliError("the journal holds no event to draw")
    rows = _timeline_rows(timeline, names, max_app_rows)
    deploy_end = timeline.deployment_end()
    span = max(timeline.t_end - timeline.t0, 1e-3)
    zoom = deploy_end is not None and bool(timeline.phases) and \
        (deploy_end - timeline.t0) < 0.25 * span
    fig_w = 13.0
    longest = max(len(label) for _, _, label in rows)
    left_in, right_in = 0.3 + 0.075 * max(longest, 12), 0.3
    axes_w = fig_w - left_in - right_in          # inches of the time axes
    fig = Figure(figsize=(fig_w, 8), dpi=100)
    FigureCanvasAgg(fig)     # no pyplot, no display: the Agg canvas (svg, pdf switch)
    ax = fig.add_axes([0, 0, 1, 1])
    colours = _phase_colours([name for spans in timeline.phases.values()
                              for name, _ in spans])
    used = _draw_rows(ax, timeline, rows, colours, axes_w / (span * 1.02))
    ax.set_xlim(-0.01 * span, span * 1.01)
    _draw_markers(ax, timeline, rows, labels=True)
    ax.set_xlabel("seconds since the first event (%s)" % _clock(timeline.t0))
    ax_zoom, zoom_rows = None, []
    if zoom:
        ax_zoom = fig.add_axes([0, 0, 1, 1])
        zoom_rows = [r for r in rows if r[0] in ("experiment", "testbed")]
        width = max(deploy_end - timeline.t0, 1e-3)
        _draw_rows(ax_zoom, timeline, zoom_rows, colours, axes_w / (width * 1.1))
        ax_zoom.set_xlim(-0.02 * width, width * 1.08)
        _draw_markers(ax_zoom, timeline, zoom_rows, labels=False,
                      until=timeline.t0 + width * 1.08)
        ax_zoom.set_title("the deployment, zoomed: %.2f s until the experiment started"
                          % width, fontsize=9, loc="left")
        ax.axvspan(0, width, color="#000000", alpha=0.04, zorder=0)
    handles = _legend_handles(colours, used, timeline)
    legend_rows = (len(handles) + 5) // 6
    # the layout in inches, top to bottom
    row_h = 0.3
    title_h, labels_h, zoom_gap = 0.45, 0.7 if timeline.markers else 0.2, 0.4
    main_h = row_h * len(rows) + 0.2
    zoom_h = row_h * len(zoom_rows) + 0.2 if zoom else 0.0
    bottom_h = 0.6 + 0.2 * legend_rows + 0.15
    height = title_h + (0.2 + zoom_h + zoom_gap if zoom else 0) + labels_h + main_h + \
        bottom_h
    fig.set_size_inches(fig_w, height)
    left, right = left_in / fig_w, right_in / fig_w
    ax.set_position([left, bottom_h / height, 1 - left - right, main_h / height])
    if ax_zoom is not None:
        ax_zoom.set_position([left, (height - title_h - zoom_h - 0.2) / height,
                              1 - left - right, zoom_h / height])
    fig.suptitle(_mpl(title or "experiment timeline"), fontsize=12, x=0.01, y=1 - 0.1 / height,
                 ha="left", va="top")
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)),
                   fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.1 / height))
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):   # SVG text stays text
        fig.savefig(buffer, format=fmt)
    return buffer.getvalue()


def _clock(t: float) -> str:
    import time
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _timeline_rows(timeline: Timeline, names: Dict[str, str], max_app_rows: int) -> list:
    """``(kind, key, label)`` rows, top to bottom."""
    rows = [("experiment", None, "experiment")]
    if None in timeline.phases:
        rows.append(("testbed", None, "all testbeds"))
    for tb in timeline.testbeds():
        rows.append(("testbed", tb, names.get("testbed:%d" % tb, "testbed %d" % tb)))
    apps = sorted(timeline.apps, key=lambda g: (timeline.app_testbed.get(g) is None,
                                                timeline.app_testbed.get(g) or 0, g))
    if len(apps) <= max_app_rows:
        for guid in apps:
            tb = timeline.app_testbed.get(guid)
            label = names.get("app:%d" % guid, "application %d" % guid)
            if tb is not None and len(timeline.testbeds()) > 1:
                label += " (tb %d)" % tb
            rows.append(("app", guid, label))
    else:
        groups: Dict[Optional[int], List[int]] = {}
        for guid in apps:
            groups.setdefault(timeline.app_testbed.get(guid), []).append(guid)
        for tb, guids in groups.items():
            where = "testbed %d" % tb if tb is not None else "no testbed"
            rows.append(("apps", tuple(guids), "%d applications, %s" % (len(guids), where)))
    return [(kind, key, _mpl(clean_text(label, 40))) for kind, key, label in rows]


def _draw_rows(ax, timeline: Timeline, rows: list, colours: Dict[str, tuple],
               inches_per_second: float) -> set:
    """Draw each row; the phase names and span kinds drawn (for the legend). A phase
    span wide enough is labelled with its name."""
    used = set()
    rel = timeline.rel
    height = 0.7
    for i, (kind, key, _) in enumerate(rows):
        y = len(rows) - 1 - i
        if kind == "experiment":
            states = timeline.experiment
            for j, (t, state) in enumerate(states):
                end = states[j + 1][0] if j + 1 < len(states) else timeline.t_end
                colour = EXPERIMENT_COLOURS.get(state, "#eeeeee")
                ax.broken_barh([(rel(t), max(end - t, 0))], (y - height / 2, height),
                               facecolors=colour, edgecolor="#666666", linewidth=0.5)
                ax.plot([rel(t)], [y], marker="|", color="#333333", markersize=12)
        elif kind == "testbed":
            for name, span in timeline.phases.get(key, []):
                used.add(name)
                end = timeline.end_of(span)
                kwargs = dict(facecolors=colours[name], edgecolor="#333333", linewidth=0.4)
                if span.state == "failed":
                    kwargs.update(edgecolor="#d62728", linewidth=1.5, hatch="xxx")
                    used.add("(failed)")
                elif span.end is None:
                    kwargs.update(hatch="///", alpha=0.7)
                    used.add("(unfinished)")
                ax.broken_barh([(rel(span.start), max(end - span.start, 0))],
                               (y - height / 2, height), **kwargs)
                if (end - span.start) * inches_per_second > 0.2 + 0.06 * len(name):
                    ax.text(rel(span.start + (end - span.start) / 2), y, _mpl(name), fontsize=6.5,
                            ha="center", va="center", clip_on=True,
                            color="white" if _dark(colours[name]) else "black")
                if span.end is not None and end == span.start:   # a lone end event
                    ax.plot([rel(end)], [y], marker="d", color=colours[name])
        elif kind == "app":
            for span in timeline.apps.get(key, []):
                end = timeline.end_of(span)
                failed = span.state not in ("started", "finished", "")
                colour = "#d62728" if failed else "#4c9f50"
                kwargs = dict(facecolors=colour, edgecolor="#2f6b33", linewidth=0.5)
                if span.end is None:
                    kwargs.update(hatch="///", alpha=0.55)
                    used.add("app running at the end")
                else:
                    used.add("app failed" if failed else "app lifetime")
                ax.broken_barh([(rel(span.start), max(end - span.start, 0))],
                               (y - height / 3, height * 2 / 3), **kwargs)
                if span.end is None:
                    ax.plot([rel(end)], [y], marker=">", color="#2f6b33", markersize=5)
        elif kind == "apps":
            _draw_app_group(ax, timeline, key, y, height)
            used.add("applications running")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([label for _, _, label in reversed(rows)], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for i, (kind, _, _) in enumerate(rows):   # separate the blocks of rows
        if i and kind != rows[i - 1][0]:
            ax.axhline(len(rows) - i - 0.5, color="#999999", linewidth=0.6)
    return used


def _mpl(text: str) -> str:
    """Text for matplotlib: a ``$`` would start mathtext."""
    return text.replace("$", "\\$")


def _dark(rgba) -> bool:
    red, green, blue = rgba[:3]
    return 0.299 * red + 0.587 * green + 0.114 * blue < 0.5


def _draw_app_group(ax, timeline: Timeline, guids, y: float, height: float) -> None:
    """Many applications in one row: how many run at each moment (a step curve)."""
    changes = []
    for guid in guids:
        for span in timeline.apps.get(guid, []):
            changes.append((span.start, 1))
            if span.end is not None:
                changes.append((span.end, -1))
    changes.sort()
    times, counts, running = [timeline.t0], [0], 0
    for t, delta in changes:
        running += delta
        times.append(t)
        counts.append(running)
    times.append(timeline.t_end)
    counts.append(running)
    peak = max(counts) or 1
    xs = [timeline.rel(t) for t in times]
    ys = [y - height / 2 + height * c / peak for c in counts]
    ax.fill_between(xs, y - height / 2, ys, step="post", color="#4c9f50", alpha=0.6)
    ax.step(xs, ys, where="post", color="#2f6b33", linewidth=0.8)
    unfinished = sum(1 for g in guids for s in timeline.apps.get(g, []) if s.end is None)
    ax.text(timeline.rel(timeline.t_end), y + height / 2, " peak %d running, %d unfinished"
            % (peak if max(counts) else 0, unfinished), fontsize=7, va="top", ha="right",
            color="#2f6b33")


def _marker_texts(found: list) -> List[str]:
    """``testbeds 1, 7 reconnected``, ``nepid recovered``, ``testbed 3: policy Restart``:
    the markers ``(kind, state, testbed)`` at one spot, the same kind and state merged."""
    groups: Dict[Tuple[str, str, bool], List[int]] = {}
    for kind, state, tb in found:
        tbs = groups.setdefault((kind, state, tb is None), [])
        if tb is not None and tb not in tbs:
            tbs.append(tb)
    texts = []
    for (kind, state, nepid), tbs in groups.items():
        who = "testbed%s %s" % ("s" if len(tbs) > 1 else "", ", ".join(map(str, tbs)))
        if kind == "daemon":
            texts.append("%s %s" % ("nepid" if nepid else who, state))
        else:
            texts.append("%spolicy %s" % ("" if nepid else who + ": ", state))
    return texts


def _draw_markers(ax, timeline: Timeline, rows: list, labels: bool,
                  until: Optional[float] = None) -> None:
    """Vertical lines for daemon and policy events (and a symbol on their testbed's row),
    labelled above the axes; experiment state changes labelled in their row. Labels that
    fall on the same spot are merged."""
    import matplotlib.transforms as transforms
    span = max(timeline.t_end - timeline.t0, 1e-3)
    row_of = {key: len(rows) - 1 - i for i, (kind, key, _) in enumerate(rows)
              if kind == "testbed" and key is not None}
    placed: List[Tuple[float, list, str]] = []
    for t, kind, state, tb in timeline.markers:
        if until is not None and t > until:
            continue
        x = timeline.rel(t)
        colour = MARKER_COLOURS.get(state, "#555555")
        ax.axvline(x, color=colour, linestyle="--" if kind == "daemon" else ":",
                   linewidth=1.2, zorder=5)
        if tb in row_of:
            ax.plot([x], [row_of[tb]], marker=MARKER_SYMBOLS.get(state, "o"), color=colour,
                    markersize=9, markeredgecolor="white", zorder=6, clip_on=False)
        if placed and abs(placed[-1][0] - x) < span * 0.02:
            placed[-1][1].append((kind, state, tb))
        else:
            placed.append((x, [(kind, state, tb)], colour))
    if not labels:
        return
    trans = transforms.blended_transform_factory(ax.transData, ax.transAxes)
    for x, found, colour in placed:
        texts = _marker_texts(found)
        text = ", ".join(texts[:3]) + (" +%d" % (len(texts) - 3) if len(texts) > 3 else "")
        ax.annotate(_mpl(text), xy=(x, 1), xycoords=trans, xytext=(0, 4),
                    textcoords="offset points", rotation=20, fontsize=7, color=colour,
                    ha="left", va="bottom", rotation_mode="anchor")
    merged: List[Tuple[float, List[str]]] = []
    for t, state in timeline.experiment:
        x = timeline.rel(t)
        if merged and x - merged[-1][0] < span * 0.08:
            merged[-1][1].append(state)
        else:
            merged.append((x, [state]))
    y = len(rows) - 1 + 0.36
    for x, states in merged:
        text = states[0] if len(states) == 1 else "%s \u2192 %s" % (states[0], states[-1])
        right = x > 0.8 * span      # near the end: the label ends at the state change
        ax.text(x, y, _mpl(text + " " if right else " " + text), fontsize=6.5, color="#222222",
                ha="right" if right else "left", va="bottom", clip_on=False)


def _legend_handles(colours: Dict[str, tuple], used: set, timeline: Timeline) -> list:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    handles = [Patch(facecolor=colours[name], edgecolor="#333333", label=_mpl(name))
               for name in colours if name in used]
    if "(failed)" in used:
        handles.append(Patch(facecolor="white", edgecolor="#d62728", hatch="xxx",
                             label="phase failed"))
    if "(unfinished)" in used:
        handles.append(Patch(facecolor="white", edgecolor="#333333", hatch="///",
                             label="phase unfinished"))
    for label, colour, hatch in (("app lifetime", "#4c9f50", None),
                                 ("app running at the end", "#4c9f50", "///"),
                                 ("app failed", "#d62728", None),
                                 ("applications running", "#4c9f50", None)):
        if label in used:
            handles.append(Patch(facecolor=colour, edgecolor="#2f6b33", hatch=hatch,
                                 label=label, alpha=0.7 if hatch else 1))
    kinds = {(kind, state) for _, kind, state, _ in timeline.markers}
    for kind, state in sorted(kinds):
        handles.append(Line2D([0], [0], color=MARKER_COLOURS.get(state, "#555555"),
                              linestyle="--" if kind == "daemon" else ":",
                              marker=MARKER_SYMBOLS.get(state, "o"), markersize=6,
                              label=_mpl("%s %s" % (kind, state))))
    return handles

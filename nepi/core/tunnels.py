"""The experiment controller's side of cross-testbed TunChannels: link keys and counters.

Each cross connection gets a 256-bit link key, handed to both ends inside the cross data
of the authenticated RPC (``cross_data[peer][LINK_KEYS][str(local guid)]``), never as an
attribute: it is in neither experiment.xml nor execute.xml. The controller makes it at
random and keeps it in KEYS_FILE (0600) in the experiment root dir, so that a recovered
controller (nepid kill -9, then recover) and a Restart of one testbed hand both ends the
same key again. A NEPI 2 design that sets ``tun_key`` on an end keeps working: the link
key is derived from it with HKDF-SHA256 (from the lower of the two ends' values when both
are set, NEPI 2's min(own, peer) rule), so it needs no file.
"""

import logging
import os
import secrets
import threading
from typing import Any, Dict, List, Optional

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nepi.util.files import read_json, write_json_atomic
from nepi.util.rootfiles import LINK_KEYS as KEYS_FILE
from nepi.util.tunchannel import KEY_SIZE, LINK_KEYS, STATS, parse_stats

DESIGN_KEY = "tun_key"            # NEPI 2's attribute: a design-given key
_lock = threading.Lock()          # load-modify-write of KEYS_FILE
_logger = logging.getLogger("nepi.core.tunnels")

def _link_id(guid: int, other_guid: int) -> str:
    return "%d-%d" % tuple(sorted((int(guid), int(other_guid))))


def derive_link_key(design_key: str, link_id: str) -> str:
    """The link key (hex) of link ``link_id`` ("lower guid-higher guid") from a design's
    tun_key: distinct per link even when one tun_key is set on many channels."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None,
                info=b"nepi tunchannel link " + link_id.encode()).derive(
                    design_key.encode("utf-8")).hex()


def deliver_link_keys(root_dir: str, design_data, testbed_guid: int,
                      cross_data: Dict[Any, Dict[Any, dict]]) -> None:
    """Add to each peer entry of ``cross_data`` (what testbed ``testbed_guid`` receives)
    the keys of its links with this testbed's elements."""
    path = os.path.join(root_dir, KEYS_FILE)
    with _lock:
        stored: Optional[Dict[str, str]] = None      # KEYS_FILE, read when first needed
        known = 0
        for guid in design_data.box_guids(testbed_guid):
            for (_, other_guid, _) in design_data.get_connection_data(guid):
                entry = cross_data.get(design_data.get_box_data(other_guid)[0], {}) \
                    .get(other_guid)
                if entry is None:
                    continue
                link = _link_id(guid, other_guid)
                given = [value for value in (
                    design_data.get_attribute_data(guid, DESIGN_KEY),
                    design_data.get_attribute_data(other_guid, DESIGN_KEY)) if value]
                if given:
                    key = derive_link_key(min(given), link)
                else:
                    if stored is None:
                        stored = read_json(path, {})
                        known = len(stored)
                    key = stored.setdefault(link, secrets.token_hex(KEY_SIZE))
                entry.setdefault(LINK_KEYS, {})[str(guid)] = key
        if stored is not None and len(stored) != known:
            write_json_atomic(path, stored, mode=0o600)


def forget_link_keys(root_dir: str) -> bool:
    """Remove the link keys once the experiment is shut down (they protect nothing any
    more and are secrets). True if there was a key file."""
    try:
        os.unlink(os.path.join(root_dir, KEYS_FILE))
        return True
    except FileNotFoundError:
        return False


def channel_counters(testbed, guids: List[int]) -> Optional[Dict[str, int]]:
    """The counters of one testbed's TunChannels ``guids``, summed, with ``channels``
    (how many answered); None if it has none or does not answer."""
    if testbed is None or not guids:
        return None
    try:
        values = testbed.get_values([[guid, STATS] for guid in guids])
    except Exception as e:     # a status line without counters, not a failure
        _logger.info("TunChannel counters not available: %s", e)
        return None
    totals = {"channels": 0}
    for text in values:
        counters = parse_stats(text)
        if counters:
            totals["channels"] += 1
            for name, value in counters.items():
                totals[name] = totals.get(name, 0) + value
    return totals if totals["channels"] else None

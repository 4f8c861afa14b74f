"""Crash-safe at every moment (issue 13): a real `nepid run` of a netns star whose testbed
runs as a daemon; kill -9 of {the testbed daemon, nepid} × {during do_create,
do_connect_init, do_configure, start; after start} × {Fail, Recover, Restart}. After each
the experiment is started and working (a ping across the star) or failed with a clear
message, and after `nepid stop` nothing of it is left. The moments come from the
manifest nepi writes, not from sleeps (tests/crash_matrix.py)."""

import pytest

from crash_matrix import POINTS, POLICIES, SHUTDOWN, TARGETS, CrashRun
from helpers import needs_netns

from nepi.util.constants import DeploymentConfiguration as DC

pytestmark = [needs_netns, pytest.mark.timeout(600)]

NODES = 60           # enough for each phase to take a measurable time here


def expected(point: str, target: str, policy: str) -> str:
    if point == SHUTDOWN:
        return "stopped"
    if target == "testbed" and policy == DC.POLICY_FAIL:
        return "failed"
    return "working"


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("point", POINTS)
def test_kill9_at_every_moment(tmp_path, point, target, policy):
    result = CrashRun(str(tmp_path / "exp"), NODES, policy).run(point, target)
    assert result["outcome"] == expected(point, target, policy), result
    if result["outcome"] == "failed":
        assert "testbed 1" in result["message"], result
    assert result["stop"] in (0, 3), result      # 3: nepid had already stopped, cleanly
    assert result.get("finished_by", 0) == 0, result
    assert result["left"] == [], result

"""``KubeSchedulerConfiguration`` as ``kajitori scheduler --config`` reads it (scheduler/config.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kajitori.cli import main as cli
from kajitori.scheduler import config

Object = dict[str, Any]


def document(**fields: Any) -> Object:
    return {"apiVersion": config.API_VERSION, "kind": config.KIND, **fields}


def test_an_empty_configuration_is_upstreams_defaults() -> None:
    settings = config.parse(document())
    assert settings.scheduler_name == "default-scheduler"
    assert settings.leader_elect is True
    assert (settings.election.name, settings.election.namespace) == (
        "kube-scheduler",
        "kube-system",
    )
    assert (settings.election.lease_duration, settings.election.retry_period) == (15.0, 2.0)


def test_the_profiles_scheduler_name_and_leader_election_are_read(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.yaml"
    path.write_text(
        f"apiVersion: {config.API_VERSION}\n"
        f"kind: {config.KIND}\n"
        "profiles:\n- schedulerName: second-scheduler\n"
        "leaderElection:\n  leaderElect: true\n  resourceName: second-scheduler\n"
        "  leaseDuration: 1m30s\n  renewDeadline: 500ms\n  retryPeriod: 0.2s\n"
    )
    settings = config.load(path)
    assert settings.scheduler_name == "second-scheduler"
    assert settings.election.name == "second-scheduler"
    assert settings.election.lease_duration == 90.0
    assert settings.election.renew_deadline == 0.5
    assert settings.election.retry_period == 0.2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"profiles": [{"schedulerName": "a"}, {"schedulerName": "b"}]}, "exactly one profile"),
        ({"profiles": [{"schedulerName": "a", "plugins": {}}]}, "profiles[0].plugins"),
        ({"profiles": [{"schedulerNam": "a"}]}, 'unknown field "profiles[0].schedulerNam"'),
        ({"percentageOfNodesToScor": 5}, 'unknown field "percentageOfNodesToScor"'),
        ({"leaderElection": {"leaseDuration": "15"}}, "invalid duration '15'"),
        ({"leaderElection": {"resourceLock": "endpoints"}}, "only leases"),
        ({"leaderElection": {"leaseDuration": "5s"}}, "greater than renewDeadline"),
    ],
)
def test_what_kajitori_cannot_honour_is_refused(fields: Object, message: str) -> None:
    with pytest.raises(config.ConfigError, match=None) as raised:
        config.parse(document(**fields))
    assert message in str(raised.value)


def test_another_kind_or_version_is_refused() -> None:
    with pytest.raises(config.ConfigError, match="expected apiVersion"):
        config.parse({"apiVersion": "kubescheduler.config.k8s.io/v1beta3", "kind": config.KIND})


def test_leader_election_flags_given_override_the_file() -> None:
    """As upstream's ApplyLeaderElectionTo: the flags set on the command line win."""
    settings = config.parse(document(leaderElection={"resourceName": "second"}))
    parser = cli._parser()
    plain = parser.parse_args(["scheduler", "--kubeconfig", "k"])
    election = cli._scheduler_election(plain, settings)
    assert election is not None and election.name == "second"
    assert election.lease_duration == 15.0
    longer = parser.parse_args(
        ["scheduler", "--kubeconfig", "k", "--leader-elect-lease-duration=20s"]
    )
    election = cli._scheduler_election(longer, settings)
    assert election is not None and (election.name, election.lease_duration) == ("second", 20.0)
    off = parser.parse_args(["scheduler", "--kubeconfig", "k", "--leader-elect=false"])
    assert cli._scheduler_election(off, settings) is None
    not_electing = config.parse(document(leaderElection={"leaderElect": False}))
    assert cli._scheduler_election(plain, not_electing) is None

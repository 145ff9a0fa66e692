"""Flow runs whose worker died: two of Prefect's automations mark them Crashed (docs.prefect.io, "How to detect and
respond to zombie flows"). Without them such a flow run stays Running (or Pending) for ever, and a comparison
waiting on it (prac_lth/flows/fleet.py) would wait for ever; with them the comparison ends, and run again it starts
that experiment anew, which resumes from its cached stages.

- Running: a flow run sends a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (180 by default); it is
  declared dead after three missed heartbeats, as Prefect's documentation advises.
- Pending: a worker sets a flow run Pending when it takes it, then starts its process, which sets it Running and
  sends the heartbeats. A worker that dies in between leaves a Pending flow run that no heartbeat will ever
  concern; it is declared dead after PRAC_PENDING_S seconds (600 by default: a container may take minutes to pull
  its image and start).

    python -m prac_lth.deployments.zombies      # once per Prefect server (the stack's and compose's setup run it)
"""
from __future__ import annotations

import os
import sys
from datetime import timedelta

RUNNING = "prac-lth: crash flow runs whose heartbeats stopped"
PENDING = "prac-lth: crash flow runs pending with no process"
MISSED_HEARTBEATS = 3
PENDING_S = 600


def heartbeat_seconds() -> int:
    from prefect.settings import get_current_settings

    return get_current_settings().flows.heartbeat_frequency or 180


def pending_seconds() -> int:
    return int(os.environ.get("PRAC_PENDING_S", PENDING_S))


def _crash_when_silent(name: str, after: str, within: timedelta, why: str) -> bool:
    """An automation named `name`, unless the server has it: a flow run whose event `after` is followed by no
    other event of its own within `within` is set Crashed, saying `why`. True if created."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    try:
        Automation.read(name=name)
        return False
    except ValueError:  # not there yet
        pass
    Automation(
        name=name, description=f"A flow run with no {after} nor state change for {within.seconds} s: {why}",
        trigger=EventTrigger(after={after}, expect={"prefect.flow-run.*"},
                             match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
                             for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1, within=within),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message=f"{within.seconds} s {why}")],
    ).create()
    return True


def ensure_zombie_automations() -> list[str]:
    """Both automations on the server PREFECT_API_URL names; the names of those created now."""
    heartbeats = timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds())
    pending = timedelta(seconds=pending_seconds())
    wanted = [(RUNNING, "prefect.flow-run.heartbeat", heartbeats,
               "without a heartbeat: its worker died or was killed"),
              (PENDING, "prefect.flow-run.Pending", pending,
               "Pending without starting: the worker that took it died, or its process never started")]
    return [name for name, after, within, why in wanted if _crash_when_silent(name, after, within, why)]


if __name__ == "__main__":
    created = ensure_zombie_automations()
    for name in (RUNNING, PENDING):
        print(f"automation '{name}' {'created' if name in created else 'already there'}", file=sys.stderr)

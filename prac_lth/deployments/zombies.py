"""Flow runs whose worker died: Prefect's automation that marks them Crashed once their heartbeats stop
(docs.prefect.io, "How to detect and respond to zombie flows"). Without it a flow run whose worker was killed
stays Running for ever, and a comparison waiting on it (prac_lth/flows/fleet.py) would wait for ever; with it the
comparison ends, and run again it starts that experiment anew, which resumes from its cached stages.

    python -m prac_lth.deployments.zombies      # once per Prefect server (the stack's and compose's setup run it)

Flow runs send a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (180 by default); a run is declared
dead after three missed heartbeats, as Prefect's documentation advises."""
from __future__ import annotations

import sys
from datetime import timedelta

NAME = "prac-lth: crash flow runs whose heartbeats stopped"
MISSED_HEARTBEATS = 3


def heartbeat_seconds() -> int:
    from prefect.settings import get_current_settings

    return get_current_settings().flows.heartbeat_frequency or 180


def ensure_zombie_automation() -> bool:
    """Create the automation on the server PREFECT_API_URL names, unless it is there; True if created."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    try:
        Automation.read(name=NAME)
        return False
    except ValueError:  # not there yet
        pass
    within = timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds())
    Automation(
        name=NAME,
        description=f"A flow run with no heartbeat nor state change for {within.seconds} s: its worker died",
        trigger=EventTrigger(after={"prefect.flow-run.heartbeat"}, expect={"prefect.flow-run.*"},
                             match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
                             for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1, within=within),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {within.seconds} s: its worker died or was killed")],
    ).create()
    return True


if __name__ == "__main__":
    created = ensure_zombie_automation()
    print(f"automation '{NAME}' {'created' if created else 'already there'}", file=sys.stderr)

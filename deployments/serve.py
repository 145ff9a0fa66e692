"""The deployments prac-lth/<dataset>, served from this process with `flow.serve`-style runners."""
from __future__ import annotations

from prefect import serve

from flows.prac_lth import prac_lth

# Deployment name -> default preset (a run may pass another preset of the same dataset, e.g. a variant).
DEPLOYMENTS = {
    "digits": "digits",
    "fashion-mnist": "fashion-lenet",
    "cifar10": "cifar10-resnet20",
    "cifar100": "cifar100-resnet20",
    "tiny-imagenet": "tinyimagenet-resnet18",
}


def deployments():
    return [prac_lth.to_deployment(name=name, parameters={"preset": preset, "method": "prac", "seed": 0},
                                   description=f"IMP with PrAC sets; default preset {preset}",
                                   tags=["prac-lth", name])
            for name, preset in DEPLOYMENTS.items()]


def serve_all() -> None:
    serve(*deployments())

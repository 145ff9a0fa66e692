"""The deployments prac-lth/<dataset> (one experiment) and prac-lth-compare/<dataset> (methods × seeds, N at
once), served from this process with `flow.serve`-style runners."""
from __future__ import annotations

from prefect import serve

from prac_lth.flows.compare import compare
from prac_lth.flows.experiment_flow import prac_lth

# Deployment name -> default preset (a run may pass another preset of the same dataset, e.g. a variant).
DEPLOYMENTS = {
    "digits": "digits",
    "fashion-mnist": "fashion-lenet",
    "cifar10": "cifar10-resnet20",
    "cifar100": "cifar100-resnet20",
    "tiny-imagenet": "tinyimagenet-resnet18",
}


def deployments():
    experiments = [prac_lth.to_deployment(name=name, parameters={"preset": preset, "method": "prac", "seed": 0},
                                          description=f"IMP with PrAC sets; default preset {preset}",
                                          tags=["prac-lth", name])
                   for name, preset in DEPLOYMENTS.items()]
    comparisons = [compare.to_deployment(name=name, parameters={"preset": preset, "methods": ["prac", "lt"],
                                                                "seeds": [0, 1, 2], "parallel": 1},
                                         description=f"prac against lt over seeds, N at once; default preset {preset}",
                                         tags=["prac-lth", name])
                   for name, preset in DEPLOYMENTS.items()]
    return experiments + comparisons


def serve_all() -> None:
    serve(*deployments())

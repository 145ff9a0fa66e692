"""Early stop by mask distance: stop training once the mask pruning would give has settled."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class MaskDistanceEarlyStop:
    """The rule of the PrAC reference code.

    After each epoch, d = Hamming distance between this epoch's candidate mask and the previous
    epoch's, divided by the weights unpruned at the round's start. A FIFO of the last `window`
    values starts full of ones and records only once some d > eps has been seen (the mask must
    first move); training stops when every value in it is below eps.

    With `warmup` epochs of linear LR warm-up (the round's schedule: its epochs 1..warmup, counted
    from 1), a distance enters the FIFO only from epoch warmup + 2 on: the reference's
    `epoch > args.warmup` (epochs counted from 0), i.e. only distances between two masks both taken
    after a full-LR epoch. As there, a distance above eps during warm-up still arms the rule. It
    therefore needs at least window + 1 + max(1, warmup) epochs to fire (window + 2 without warm-up).
    """

    eps: float = 0.08
    window: int = 5
    armed: bool = False
    history: deque[float] = field(default_factory=deque)
    warmup: int = 0  # the round's warm-up epochs (RoundSchedule.warmup_epochs)

    def __post_init__(self) -> None:
        if not self.history:
            self.history = deque([1.0] * self.window, maxlen=self.window)

    def update(self, distance: float, epoch: int | None = None) -> bool:
        """Record the distance after `epoch` (counted from 1; None: past any warm-up); True when training
        should stop."""
        if epoch is None and self.warmup:
            raise ValueError("with warm-up epochs, update needs the epoch the distance is of")
        if distance > self.eps:
            self.armed = True
        if self.armed and (epoch is None or epoch > self.warmup + 1):
            self.history.append(distance)
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        return self.armed and all(d < self.eps for d in self.history)

    @staticmethod
    def minimum_epochs(window: int, warmup: int = 0) -> int:
        """The fewest epochs after which the rule can fire: a big distance at epoch 2 (the first: epoch 1 has
        no previous mask) arms it, then `window` small ones recorded, the first at epoch max(2, warmup + 2)."""
        return window + 1 + max(1, warmup)

    def state_dict(self) -> dict:
        return {"eps": self.eps, "window": self.window, "armed": self.armed, "history": list(self.history),
                "warmup": self.warmup}

    @classmethod
    def from_state_dict(cls, state: dict) -> "MaskDistanceEarlyStop":
        return cls(state["eps"], state["window"], state["armed"], deque(state["history"], maxlen=state["window"]),
                   state.get("warmup", 0))  # a checkpoint from before warm-up was kept: none

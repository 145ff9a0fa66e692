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
    first move); training stops when every value in it is below eps. It therefore needs at
    least window + 2 epochs to fire.
    """

    eps: float = 0.08
    window: int = 5
    armed: bool = False
    history: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not self.history:
            self.history = deque([1.0] * self.window, maxlen=self.window)

    def update(self, distance: float) -> bool:
        """Record one epoch's distance; True when training should stop."""
        if distance > self.eps:
            self.armed = True
        if self.armed:
            self.history.append(distance)
        return self.should_stop

    @property
    def should_stop(self) -> bool:
        return self.armed and all(d < self.eps for d in self.history)

    @staticmethod
    def minimum_epochs(window: int) -> int:
        return window + 2

    def state_dict(self) -> dict:
        return {"eps": self.eps, "window": self.window, "armed": self.armed, "history": list(self.history)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "MaskDistanceEarlyStop":
        return cls(state["eps"], state["window"], state["armed"], deque(state["history"], maxlen=state["window"]))

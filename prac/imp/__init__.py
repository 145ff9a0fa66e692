"""The IMP loop and its stages: the stage table, each stage's step (file to file) and computation, the experiment context, a round's record, --recompute, the ticket users take away."""

"""The strategy registries: selectors (what a round trains on), pruners (how the next mask is chosen), and methods, each a selector + a pruner + a schedule rule, early stop and ticket start."""

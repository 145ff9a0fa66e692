"""Where a run computes: the device and thread count, placing tensors on it, the precision it trains in, host memory."""

"""`prac-lth export`: a retrained ticket taken out of its run folder, compact, as ONNX and as a sparse PyTorch module,
timed on this machine and checked against the PyTorch ticket's predictions."""

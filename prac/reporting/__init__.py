"""What users read: the comparison of methods (tables, conclusions), its figures, the terminal report."""

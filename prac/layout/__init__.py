"""Where results live: run folders named by the fingerprint (the hash of what can change the results)."""

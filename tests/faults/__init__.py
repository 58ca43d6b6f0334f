"""The chaos suite's parts: a model server that injects faults (server.py), the honest replies it
gives between faults (replies.py), and the mixed runs driven at it with the real SDKs (runs.py)."""

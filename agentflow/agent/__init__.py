"""The task agent: its ReAct loop (`loop.py`), agents as tools (`delegation.py`), personas."""

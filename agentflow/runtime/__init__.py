"""How runs execute and nest: the step runner, scopes, and asking a person."""

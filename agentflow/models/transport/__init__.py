"""How model requests travel: the SDKs' HTTP client and its connection pool."""

"""Local stand-ins for third-party APIs (real HTTP servers on a free loopback port)."""

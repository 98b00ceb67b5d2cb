"""Real sources in: webhook receivers and history imports from GitHub, GitLab and SonarQube.

`mapping` reads the mapping file (teams, gates, agents, labels); each source module maps
its payloads to QMS events with `map_delivery`; `receiver` verifies, stores, counts and
ingests deliveries (docs/INTEGRATIONS.md).
"""

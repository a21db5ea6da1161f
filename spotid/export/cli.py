"""CLI for the export stage (see spotid/cli.py for the registration protocol)."""
from __future__ import annotations

commands: dict = {}
groups: dict = {}

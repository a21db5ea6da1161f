"""spotid.ingest: SD-card dumps -> media, sequences and failures in the catalog; deployments."""
from spotid.ingest.deployments import (
    Deployment, DeploymentError, add_deployment, ensure_deployment, get_deployment, import_deployments_csv,
    list_deployments, make_deployment, read_deployments_csv,
)
from spotid.ingest.ingester import FileIssue, IngestConfig, IngestError, Ingester, IngestSummary, walk_card
from spotid.ingest.probe import Probe, probe_file
from spotid.ingest.sequences import group_by_gap, recompute_sequences

__all__ = [
    "Deployment", "DeploymentError", "add_deployment", "ensure_deployment", "get_deployment",
    "import_deployments_csv", "list_deployments", "make_deployment", "read_deployments_csv",
    "FileIssue", "IngestConfig", "IngestError", "Ingester", "IngestSummary", "walk_card",
    "Probe", "probe_file", "group_by_gap", "recompute_sequences",
]

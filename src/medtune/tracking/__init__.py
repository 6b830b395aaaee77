"""MLflow on the driver side only: sweep logging, registry and lineage. Workers never import this."""

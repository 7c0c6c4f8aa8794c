"""Fall-risk scoring in the service: datasets, model artefacts, daily scoring and alerts."""

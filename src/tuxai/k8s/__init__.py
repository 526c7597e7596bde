"""Kubernetes manifests from a job file (``tuxai export k8s``): a Job or a JobSet that Kueue admits,
checked offline. Imports the model only."""

"""Running jobs: the per-job shim, its launcher, environments, cgroups, the local backend."""

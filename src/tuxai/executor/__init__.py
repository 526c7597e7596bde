"""Running jobs: the seam every backend answers (``attempt``), the shim, its launcher, cgroups, the local backend."""

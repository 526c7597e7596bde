"""The cluster an engine (Ray first) runs: its nodes, each with its own inventory, as the scheduler sees them."""

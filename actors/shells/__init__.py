"""The Ray side of each actor: the only modules of actors/ that import ray."""

"""Trading actors: each a Ray-free deterministic core plus a thin Ray shell."""

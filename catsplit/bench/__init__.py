"""catsplit.bench: the rendered benchmark world, its base models, and speed scripts."""

"""Generation: the seeded decode loop (`sampler`), the constraints it samples under
(`constraints`, built from the pure masks and biases of `filters`), the draw (`draw`), and
the fast cached forward with the context window (`decode`)."""

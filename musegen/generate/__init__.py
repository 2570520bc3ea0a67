"""Generation: logit filters (`filters`) and the seeded, cached decode loop (`sampler`)."""

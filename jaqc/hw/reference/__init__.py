"""What the cost model is checked against: the BitFusion simulator's reference cases, a plain-Python loop-nest
oracle, the scalar one-mapping model, example workloads, and ``jaqc cost`` over reference-format cases."""

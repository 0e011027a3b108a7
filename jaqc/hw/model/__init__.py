"""The cost model: layer problems (and the one lowering from the IR), the batched equations of the two hardware
models, unit costs and area from CACTI, per-layer records, network totals and E_HW (docs/cost_model.md)."""

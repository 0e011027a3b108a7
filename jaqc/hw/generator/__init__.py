"""The accelerator search space and the hardware generation network (JAQ Fig. 2) with its training objective
(docs/hardware_generator.md)."""

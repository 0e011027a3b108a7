"""Fixed constants of the BitFusion-style cost model, each with its unit and origin.

Origins: the BitFusion simulator (hsharma35/bitfusion, commit 04ec1c8) and its synthesis table
``results/systolic_array_synth.csv``; see docs/cost_model.md for how each constant enters the equations.
"""

from __future__ import annotations

from typing import Final

#: Highest precision of a fusion unit (bits): the simulator's ``high_prec`` (pmax) of all reference data.
PMAX_BITS: Final = 8
#: Lowest precision of a fusion unit (bits). Simulator setting ``low_prec`` (pmin).
PMIN_BITS: Final = 2
#: Width of output and partial-sum words (bits); the simulator's ``oprec``.
OUTPUT_BITS: Final = 32
#: SRAM word width (bits): pmax * pmax / pmin for WBUF and IBUF, 32 for OBUF; so 32 throughout (8, 2).
SRAM_WORD_BITS: Final = 32
#: DRAM access energy (nJ per bit); the default ``dram_cost`` of the simulator's ``Stats.get_energy``.
DRAM_NJ_PER_BIT: Final = 0.015
#: Double buffering: a tile block fits a buffer when its bits <= bytes * 8 * BUFFER_FIT_FRACTION.
BUFFER_FIT_FRACTION: Final = 0.5

# Core (fusion-unit array). The simulator looks up its synthesis table at (N, M, pmax=8, pmin=2); every
# array size of the JAQ space (3..64 per side) misses that table except 4x4, so it scales the 4x4 row by
# N*M/16, which is also exactly the 4x4 row itself. Values from systolic_array_synth.csv, row
# "500000000,4,4,8,2": area 27752.83558 um^2, dynamic power 3673500 nW at 500 MHz.
#: Area of the 16-unit (4x4) reference array at pmax=8, pmin=2 (um^2).
CORE_AREA_UM2_4X4: Final = 27752.83558
#: Dynamic power of the 4x4 reference array (nW).
CORE_DYNAMIC_POWER_NW_4X4: Final = 3673500.0
#: Synthesis frequency of the 4x4 reference array (Hz); dynamic energy per cycle = power / frequency.
CORE_SYNTH_FREQUENCY_HZ: Final = 500000000.0
#: Number of fusion units of the reference array.
CORE_REFERENCE_UNITS: Final = 16

#: Dataflow codes used in tensors (the order of :class:`jaqc.ir.accelerator.Dataflow`).
DATAFLOW_CODES: Final = {"WS": 0, "OS": 1, "RS": 2}

#: Which operand each tiled loop indexes, as (activations, weights, outputs), in LOOP_DIMS order
#: (B, OW, OH, IC, OC). A loop that does not index an operand leaves that operand's tile reusable.
LOOP_OPERAND_DEPENDENCE: Final = (
    (True, False, True),  # B
    (True, False, True),  # OW
    (True, False, True),  # OH
    (True, True, False),  # IC
    (False, True, True),  # OC
)

"""jaqc.ir: the torch-free layer IR (layers, graphs, annotations, printer/parser, JSON serde, verify)."""

from .accelerator import AcceleratorConfig, Dataflow
from .choice import Candidate, Choice
from .encoding import OPERATOR_FIELDS, OperatorVector
from .errors import IRError, ParseError, VerifyError
from .graph import LayerGraph, clone_layer
from .layer import Layer
from .mapping import LOOP_DIMS, LoopDim, Mapping
from .metrics import layer_macs, layer_params
from .parser import parse
from .printer import print_graph
from .serde import graph_from_json, graph_to_json, load_graph, save_graph
from .types import (
    ACTIVATION_KINDS,
    LEGAL_BITS,
    WEIGHTED_KINDS,
    BatchNormParams,
    ConcatParams,
    Conv2dParams,
    LayerCost,
    LayerKind,
    LinearParams,
    PoolParams,
    QuantSpec,
    Shape,
    ShuffleParams,
    SliceParams,
    Source,
)
from .verify import verify

__all__ = [
    "ACTIVATION_KINDS",
    "LEGAL_BITS",
    "LOOP_DIMS",
    "OPERATOR_FIELDS",
    "WEIGHTED_KINDS",
    "AcceleratorConfig",
    "BatchNormParams",
    "Candidate",
    "Choice",
    "ConcatParams",
    "Conv2dParams",
    "Dataflow",
    "IRError",
    "Layer",
    "LayerCost",
    "LayerGraph",
    "LayerKind",
    "LinearParams",
    "LoopDim",
    "Mapping",
    "OperatorVector",
    "ParseError",
    "PoolParams",
    "QuantSpec",
    "Shape",
    "ShuffleParams",
    "SliceParams",
    "Source",
    "VerifyError",
    "clone_layer",
    "graph_from_json",
    "graph_to_json",
    "layer_macs",
    "layer_params",
    "load_graph",
    "parse",
    "print_graph",
    "save_graph",
    "verify",
]

"""The batched likelihood engine: layout (units, visit patterns), the one profiled likelihood,
natural-parameter derivatives, and per-group conditional quantities."""

from .engine import Engine
from .layout import Chunk, EngineError
from .likelihood import spd_inverse

__all__ = ["Chunk", "Engine", "EngineError", "spd_inverse"]

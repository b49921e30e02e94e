"""What autograd keeps for a backward pass, in bytes."""
from __future__ import annotations

from typing import Any, Callable

import torch

__all__ = ["saved_tensor_bytes"]


def saved_tensor_bytes(build_graph: Callable[[], Any]) -> int:
    """Bytes of the distinct storages autograd saves while ``build_graph()`` runs.

    Counted with ``torch.autograd.graph.saved_tensors_hooks``: every tensor a Function saves
    for its backward is packed once; tensors sharing a storage (views, one activation saved
    by two Functions) count once, at the storage's full size. Parameters saved by the graph
    count too, as autograd keeps references to them.
    """
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        build_graph()
    return sum(storages.values())

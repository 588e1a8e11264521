"""The one protocol of everything whose behaviour follows the training epoch.

Loss weights (DRW), deferred samplers, BBN's adaptor α and anything added later implement
``set_epoch(epoch)`` with the 0-based epoch about to start, as PyTorch's ``DistributedSampler``
does; whatever needs the total number of epochs takes it when it is built. The engine calls
``set_epoch`` on every data stream (which passes it to its sampler) and on the method, whose
base class passes it to every sub-module that implements it, so no method has to remember.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class EpochDependent(Protocol):
    def set_epoch(self, epoch: int) -> None:
        """Behave as in 0-based ``epoch`` from now on."""

"""``Sequential``'s state as a whole: its config, the host copy of its
arrays and random streams, and the network rebuilt from them, which model
files, checkpoints, ``copy.deepcopy``, ``pickle`` and ``Sequential.to`` all
use; and the check that a network can be rebuilt that way."""

from __future__ import annotations

from typing import Any, TypeVar

from bpnet.nn.layers import LAYERS, declared_shapes, layer_from_config
from bpnet.nn.losses import LOSSES

_Net = TypeVar("_Net", bound="StateMixin")


class StateMixin:
    """Config, copies and rebuilding of a ``Sequential`` (``pickle``'s
    ``__reduce__`` is in ``nn/model.py``, beside the function old pickles
    name)."""

    def get_config(self) -> dict:
        config = {
            "layers": [layer.get_config() for layer in self.layers],
            "loss": type(self.loss).__name__,
            "dtype": self.dtype_name,
            "seed": self.seed,
        }
        if self.layers[0].n_in is None:  # the first layer does not fix it
            config["n_in"] = self.n_inputs
        return config

    @classmethod
    def from_config(
        cls: type[_Net],
        config: dict,
        device: Any = "cpu",
        dtype: Any = None,
        loss: Any = None,
    ) -> _Net:
        """The network ``get_config`` describes, unbuilt or with fresh weights;
        ``loss`` (a name or a Loss object) stands in for the config's."""
        layers = [layer_from_config(c) for c in config["layers"]]
        return cls(
            layers,
            device=device,
            dtype=dtype or config.get("dtype", "float32"),
            seed=config.get("seed", 0),
            loss=config.get("loss") if loss is None else loss,
            n_in=config.get("n_in"),
        )

    def to(self: _Net, device: Any, dtype: Any = None) -> _Net:
        """A copy of this network on another device (and/or dtype): its layers,
        loss, weights, buffers and batch-order generator (the dropout masks'
        generator goes on where the device is of the same kind)."""
        self.check_rebuildable("to", loss=False)
        return self._rebuilt(device, self._host_state(), dtype)

    # --- copies: copy.deepcopy (pickle: nn/model.py) ---------------------
    def __deepcopy__(self: _Net, memo: dict) -> _Net:
        """An independent network on the same device: the same layers, loss,
        parameters, buffers and random streams (array-library modules and
        device handles are not copied, they are looked up again)."""
        self.check_rebuildable("copy", loss=False)
        clone = self._rebuilt(self.backend, self._host_state())
        memo[id(self)] = clone
        return clone

    def check_rebuildable(self, what: str = "save", loss: bool = True) -> None:
        """Refuse, naming the class and the cure, a network that a file or a
        copy could not rebuild from its config: a layer class (or, with
        ``loss``, a loss class) that is not registered, or a layer whose
        ``parameter_shapes``/``buffer_shapes`` do not give the arrays it
        holds. Files and copies rebuild each layer as
        ``LAYERS.from_config(layer.get_config())``, so ``get_config`` must
        return the constructor's arguments."""
        for i, layer in enumerate(self.layers):
            if LAYERS.name_of(layer) is None:
                raise ValueError(
                    f"{what}: layer {i} ({type(layer).__name__}) is not registered, "
                    "so it cannot be rebuilt from its config; decorate its class with "
                    "@bpnet.nn.layers.LAYERS.register() and import its module before "
                    "loading a file"
                )
        if loss and LOSSES.name_of(self.loss) is None:
            raise ValueError(
                f"{what}: the loss ({type(self.loss).__name__}) is not registered, so "
                "a file cannot name it; decorate its class with "
                "@bpnet.nn.losses.LOSSES.register() and import its module before "
                "loading a file"
            )
        if self.n_inputs is None:
            return
        fresh = [layer_from_config(layer.get_config()) for layer in self.layers]
        try:  # what a file's check (io.sequential) will ask of the rebuilt layers
            declared = declared_shapes(fresh, self.n_inputs)
        except ValueError as exc:
            raise ValueError(
                f"{what}: the layers rebuilt from their configs do not chain: {exc}"
            ) from None
        for i, (layer, (width, *shapes)) in enumerate(zip(self.layers, declared)):
            for kind, said, held in zip(
                ("parameter", "buffer"),
                shapes,
                (layer.named_parameters(), layer.named_buffers()),
            ):
                have = {k: tuple(v.shape) for k, v in held.items()}
                if {k: tuple(v) for k, v in said.items()} != have:
                    raise ValueError(
                        f"{what}: layer {i} ({type(layer).__name__}) holds the "
                        f"{kind}s {have}, but its config rebuilds one whose "
                        f"{kind}_shapes({width}) gives {dict(said)}; define "
                        f"{kind}_shapes (and get_config with the constructor's "
                        "arguments)"
                    )

    def _host_state(self) -> dict:
        import copy

        to_host = self.backend.to_numpy
        built = self.n_inputs is not None
        return {
            "config": self.get_config(),
            "dtype": self.dtype_name,
            "loss": copy.deepcopy(self.loss),
            "parameters": [to_host(p) for p in self.parameters()] if built else [],
            "buffers": [to_host(b) for b in self.buffers()] if built else [],
            "host_rng": copy.deepcopy(self.host_rng),
            "device_rng": self.device_rng.get_state(),  # dropout's masks
            # what a network not built yet will draw its weights with (an
            # initializer object too, which a config cannot name)
            "inits": []
            if built
            else [copy.deepcopy(getattr(la, "init", None)) for la in self.layers],
        }

    @classmethod
    def _rebuilt(cls: type[_Net], device: Any, state: dict, dtype: Any = None) -> _Net:
        """The network ``_host_state`` describes, on ``device``; the dropout
        generator's state goes on where the device's kind wrote it."""
        clone = cls.from_config(
            state["config"],
            device=device,
            dtype=dtype or state["dtype"],
            loss=state["loss"],  # the object: a loss of the user's own too
        )
        if state["parameters"]:  # a network not built yet has none
            clone.set_parameters(state["parameters"])
            clone.set_buffers(state["buffers"])
        for layer, init in zip(clone.layers, state["inits"]):
            if init is not None:
                layer.init = init
        clone.host_rng = state["host_rng"]
        if clone.device_rng.takes_state(state["device_rng"]):
            clone.device_rng.set_state(state["device_rng"])
        return clone

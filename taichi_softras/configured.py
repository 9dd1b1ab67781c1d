"""The base of the SoftRas-compatible modules whose settings live in a frozen dataclass."""

from __future__ import annotations

import dataclasses

import torch.nn as nn


class Configured(nn.Module):
    """A module whose settings live in a frozen dataclass ``self.config``; its fields read and write
    like plain attributes (SoftRas style: ``rasterizer.sigma_val = 1e-4``), each write re-validated
    by the dataclass (a new config replaces the old one)."""

    def __getattr__(self, name):
        config = self.__dict__.get("config")
        if config is not None and name in config.__dataclass_fields__:
            return getattr(config, name)
        return super().__getattr__(name)

    def __setattr__(self, name, value):
        config = self.__dict__.get("config")
        if config is not None and name in config.__dataclass_fields__:
            object.__setattr__(self, "config", dataclasses.replace(config, **{name: value}))
        else:
            super().__setattr__(name, value)

    def extra_repr(self) -> str:
        return ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in dataclasses.fields(self.config))

"""ganforge: the generative adversarial network family, end to end.

    import ganforge
    run = ganforge.train("dcgan", data="mnist5k", minutes=3, out="runs/dcgan")
    images = ganforge.load("runs/dcgan").sample(16)   # (16, 1, 28, 28) in [-1, 1]
"""
from ganforge.errors import UserError
from ganforge.version import __version__

__all__ = ["UserError", "__version__", "train", "load"]


def __getattr__(name):
    # Keep `import ganforge` light: torch-heavy modules load on first use.
    if name in ("train", "load"):
        from ganforge import api

        return getattr(api, name)
    raise AttributeError(name)

"""Two-domain names callers import from here: folders are read by data/two_domains.py, public sets by
data/public.py, and the held-out split of any --data SPEC comes from the catalogue."""
from __future__ import annotations

from ganforge.data.base import PairedImageData, conform_pair
from ganforge.data.catalogue import held_out
from ganforge.data.public import PUBLIC, PublicSet, load_public
from ganforge.data.two_domains import detect_layout, load_two_domains

__all__ = ["PUBLIC", "PairedImageData", "PublicSet", "conform_pair", "detect_layout", "held_out", "load_public",
           "load_two_domains"]

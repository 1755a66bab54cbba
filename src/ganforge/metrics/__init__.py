"""Quality figures of generated and translated images. Importing the package registers the built-in metrics
(metrics/standard.py) in the one registry (metrics/registry.py)."""
from ganforge.metrics import standard  # noqa: F401

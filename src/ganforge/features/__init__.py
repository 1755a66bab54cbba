"""Fixed pretrained networks that describe images, and where their weights come from.

- ``digit_classifier``: the built-in digit classifier (its features score digits, its first layers serve the
  content and style losses on grey digits);
- ``attribute_classifier``: reads mnist5k-attrs' attributes (StarGAN's targets and figures);
- ``inception``: NVlabs' inception-2015-12-05 as an eager network, its early blocks and its preprocessing;
  ``inception_weights``: which weights file it is built from.

Models use them for losses and targets; metrics use them to measure. Neither owns them.
"""

"""Conditional GAN (Mirza & Osindero 2014): the one-hot label joins z in G and the image in D."""
from ganforge.models import register
from ganforge.models.gan import GAN


@register
class CGAN(GAN):
    name = "cgan"
    paper = "Mirza & Osindero 2014, Conditional Generative Adversarial Nets"
    summary = "GAN with the class label joined to z (100-d) in G and to the image in D"
    needs = "labels"

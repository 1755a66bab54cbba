"""ACGAN (Odena et al. 2017): G conditioned on the class, D with an auxiliary classifier head."""
import torch

from ganforge import losses
from ganforge.data.catalogue import Kind
from ganforge.models.base import Capability
from ganforge.models.registry import register
from ganforge.models.dcgan import DCGAN
from ganforge.models.recipe import Rung


@register
class ACGAN(DCGAN):
    name = "acgan"
    paper = "Odena et al. 2017, Conditional Image Synthesis with Auxiliary Classifier GANs"
    summary = "class-conditional G; D predicts real/fake and the class (log-likelihood of the right class)"
    needs = Kind.LABELS
    capabilities = DCGAN.capabilities | {Capability.CLASSIFY}
    # DCGAN's networks and small-data recipe (it beat batch norm with Adam beta1 0.5 on mnist5k), the paper's batch
    defaults = {**DCGAN.defaults, "batch_size": 100}
    # DCGAN's networks and optimisers, so DCGAN's colour rung: more, smaller steps in the same minutes
    recipe = (Rung(32, why="tuned on mnist5k (the quality table)"),
              Rung(256, {"batch_size": 16},
                   why="DCGAN's colour rung; mnist5k-attrs' colour digits at 64 px, 10 minutes: "
                       "FID 112 against 243 at batch 100 (benchmarks/bench_recipes.py)"))
    # appendix, CIFAR-10 set-up: batch norm in D, Adam 2e-4 (0.5, 0.999), no EMA
    paper_settings = {
        "d_norm": "batch", "ema.beta": 0.0,
        "optim.G.lr": 2e-4, "optim.D.lr": 2e-4, "optim.G.betas": [0.5, 0.999], "optim.D.betas": [0.5, 0.999],
    }

    @property
    def aux_classes(self):
        return self.n_classes

    def d_step(self, batch, ctx):
        real, real_labels = batch["image"], batch["label"]
        fake, fake_labels = self.make_fake(real.shape[0], real.device, ctx)
        out_real, out_fake = self.score_pair(real, fake)
        adv_real, cls_real = losses.split_scores(out_real, self.n_classes)
        adv_fake, cls_fake = losses.split_scores(out_fake, self.n_classes)
        adversarial = losses.d_loss(self.cfg.loss, adv_real, adv_fake)
        classification = losses.classification(cls_real, real_labels) + losses.classification(cls_fake, fake_labels)
        return {"loss": adversarial + classification, "adv": adversarial.detach(), "cls": classification.detach()}

    def g_step(self, batch, ctx):
        fake, labels = self.take_fake(batch["image"].shape[0], batch["image"].device, ctx)
        adv, cls = losses.split_scores(self.score(fake), self.n_classes)
        classification = losses.classification(cls, labels)
        return {"loss": losses.g_loss(self.cfg.loss, adv) + classification, "cls": classification.detach()}

    @torch.no_grad()
    def judge(self, images, labels=None):
        """Real or fake from the adversarial score; the class from the auxiliary head."""
        adv, logits = losses.split_scores(self.D(images, None), self.n_classes)
        return self.verdict(adv, class_probabilities=torch.softmax(logits, dim=1))

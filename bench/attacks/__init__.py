"""Adversarial attacks on SNNs and ANNs, and the helpers of the robustness metrics.

- :mod:`bench.attacks.core`: FGSM, PGD, the random-sign noise control, EOT gradients (pure).
- :mod:`bench.attacks.resolve`: normalization, stochasticity and transfer source of a model.
- :mod:`bench.attacks.stability`: clean-vs-attacked map comparisons.
- :mod:`bench.attacks.audit`: audit table and warnings, paired SAM vs Grad-CAM comparison.
"""

from bench.attacks.core import AttackSpec, attack, eot_seeds, eps_to_normalized, predict

__all__ = ["AttackSpec", "attack", "eps_to_normalized", "eot_seeds", "predict"]

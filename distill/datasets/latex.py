"""LaTeX helpers shared by the dataset adapters.

`last_boxed` has one implementation, in distill.verify.boxed (stdlib only), shared with the
verifiers so that an answer imported from a dataset and an answer read from a model response
are extracted the same way. Behaviour: the content of the last ``\\boxed{...}`` / ``\\fbox{...}``
(brace matched, escaped braces are literals), ``\\boxed 5`` gives ``5``; None when there is no
box or the last one is unbalanced (an earlier box is not a safe substitute for a broken final
one).
"""

from __future__ import annotations

from distill.verify.boxed import last_boxed

__all__ = ["last_boxed"]

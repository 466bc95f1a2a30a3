"""The small prompt-injection classifier: hashed word and character n-grams, logistic regression.

The weights ship in the package (`data/injection_model.npz`, written by
`scripts/train_injection_classifier.py`); nothing is downloaded at run time and neither sklearn nor
torch is needed: scoring is a sum of weights looked up by MurmurHash3 of each feature. numpy is
imported only to read the file, once, on first use.

Features of a text (lowercased, after `_normalize`): word unigrams and bigrams, and character
4-grams of the words joined by single spaces, each hashed into `2**bits` buckets; presence only,
scaled by 1/sqrt(number of features). The same `features()` is used by the training script, so the
two can never disagree.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass
from importlib import resources
from operator import itemgetter

import mmh3

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
DEFAULT_BITS = 17
MODEL_FILE = "injection_model.npz"


def features(text: str, bits: int = DEFAULT_BITS) -> list[int]:
    """The distinct hashed feature indices of `text`."""
    mask = (1 << bits) - 1
    tokens = _TOKEN.findall(text.lower())
    joined = " " + " ".join(tokens) + " "
    # The distinct feature strings first, then one hash each: text repeats its n-grams, and a set of
    # strings is cheaper to build than the hashes it saves ("w:" and "b:" never occur in a 4-gram).
    grams = {joined[i : i + 4] for i in range(len(joined) - 3)}
    grams.update(["w:" + t for t in tokens])
    grams.update([f"b:{a} {b}" for a, b in itertools.pairwise(tokens)])
    h = mmh3.hash
    return list({h(g) & mask for g in grams})


@dataclass(frozen=True, slots=True)
class InjectionModel:
    """Weights of the logistic regression over hashed features."""

    weights: list[float]
    bias: float
    bits: int
    version: str

    def score(self, text: str) -> float:
        """Probability that `text` is an injection or jailbreak (0..1)."""
        idx = features(text, self.bits)
        if not idx:
            return 0.0
        picked = itemgetter(*idx)(self.weights)
        total = picked if isinstance(picked, float) else math.fsum(picked)
        z = self.bias + total / math.sqrt(len(idx))
        if z < -30:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))


@functools.cache
def load_model() -> InjectionModel:
    """The model shipped in the package (read once)."""
    import numpy as np  # only here: importing shipyard.guardrails stays cheap

    with resources.files("shipyard.guardrails").joinpath("data", MODEL_FILE).open("rb") as f:
        data = np.load(f, allow_pickle=False)
        weights = data["weights"].astype(np.float64).tolist()
        bias = float(data["bias"])
        bits = int(data["bits"])
        version = str(data["version"])
    if len(weights) != 1 << bits:
        raise ValueError(f"{MODEL_FILE}: {len(weights)} weights for {bits} bits; retrain the model")
    return InjectionModel(weights=weights, bias=bias, bits=bits, version=version)

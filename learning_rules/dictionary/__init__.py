"""Dictionary learning (``specs/dictionary_learning.md``).

:class:`SupervisedDictionaryLearning` (alias :data:`SDL`): SDL-filter and SDL-feature with
auxiliary covariates, solved by block coordinate descent (float or with the dictionary on a
:class:`devices.DeviceArray`) or lifted low-rank projected gradient descent. Baselines:
:class:`OnlineDictionaryLearning` (Mairal et al. 2010), :class:`NMF`, :class:`LogisticRidge` and
:class:`MFLogistic`. Planted problems of the acceptance checks in :mod:`.planted`.
"""

from ._lasso import lasso_cd, lasso_cd_numba, lasso_cd_reference
from .baselines import NMF, LogisticRidge, MFLogistic, OnlineDictionaryLearning
from .planted import PLANTED_TRAIN, planted_disc, planted_nmf, planted_sub
from .sdl import SDL, SupervisedDictionaryLearning, sparse_codes

__all__ = [
    "OnlineDictionaryLearning",
    "NMF",
    "LogisticRidge",
    "MFLogistic",
    "lasso_cd",
    "lasso_cd_numba",
    "lasso_cd_reference",
    "SDL",
    "SupervisedDictionaryLearning",
    "sparse_codes",
    "planted_nmf",
    "planted_sub",
    "planted_disc",
    "PLANTED_TRAIN",
]

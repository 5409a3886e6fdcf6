"""Keeping a whole scikit-learn pipeline that holds bpnet estimators.

``est.save("clf.npz")`` keeps one estimator; a ``Pipeline`` whose scaler
comes first must be kept whole, or the model later sees unscaled input.
scikit-learn's advice for files that may come from elsewhere is ``skops.io``,
which loads only the types it is told to trust. bpnet's estimators pickle as
host arrays plus plain metadata (``BaseMLP.__getstate__``), which skops
stores with no code in the file, so the estimator classes are all that need
trusting::

    import skops.io as sio
    sio.dump(pipe, "pipe.skops")
    pipe = sio.load("pipe.skops", trusted=bpnet.skops_trusted_types())

``pickle`` and ``joblib`` keep the same objects, for files you made yourself
only: loading a pickle runs whatever code it names.
"""

from __future__ import annotations


def skops_trusted_types() -> list[str]:
    """The names of bpnet's types that ``skops.io.load`` must be told to
    trust to load a file holding bpnet estimators.

    Returns
    -------
    list of str
        Fully qualified class names, for ``skops.io.load(path, trusted=...)``;
        scikit-learn's own types (``Pipeline``, ``StandardScaler``, ...) are
        trusted by skops already.
    """
    # imported here: ``import bpnet`` must not need scikit-learn
    from bpnet.sklearn.classifier import MLPClassifier
    from bpnet.sklearn.regressor import MLPRegressor

    return sorted(
        f"{c.__module__}.{c.__qualname__}" for c in (MLPClassifier, MLPRegressor)
    )

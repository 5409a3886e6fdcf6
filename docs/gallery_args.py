"""The arguments sphinx-gallery runs each example with: the small data the tests
use (tests/test_examples.py), so the site builds in seconds."""

from pathlib import Path

ARGS = {
    "ex4_tnc": ["--maxiter", "10"],
    "ex4_cg": ["--maxiter", "15"],
    "ex4_deep": ["--hidden", "25,25", "--maxiter", "20"],
    "dnn_classifier": ["--epochs", "5"],
    "dlfs_ch5": ["--epochs", "5"],
    "dlfs_ch6": ["--epochs", "5"],
    "dlfs_ch7": ["--epochs", "3"],
}


def reset_argv(gallery_conf, script_vars):
    return ARGS.get(Path(script_vars["src_file"]).stem, [])

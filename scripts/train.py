#!/usr/bin/env python
"""Train a bpnet network: ``python scripts/train.py --device cpu|cuda ...``.

A thin wrapper around ``bpnet-train`` (bpnet.cli.train); ``--help`` lists the flags.
"""

import sys

from bpnet.cli.train import train_main

if __name__ == "__main__":
    sys.exit(train_main())

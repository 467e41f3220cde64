"""The embedded federation of ``worksteps up`` in a process of its own, sites made larger.

Run by :class:`children.Child`: starts the federation (``start_federation``) with each of the
default sites' capacity raised to ``--cores``/``--memory``/``--storage`` (a hundred sessions
at once, and every offer a hold of up to 8 cores until it is rejected), prints one JSON line
(``federation.json``'s addresses, the data directory) and serves until standard input closes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from children import wait_for_stdin_to_close

from worksteps.broker.settings import Capacity
from worksteps.federation import FederationConfig, start_federation
from worksteps.federation.config import DEFAULT_SITES


def config(data_dir: Path, cores: int, memory: int, storage: int) -> FederationConfig:
    sites = [
        site.model_copy(
            update={"capacity": Capacity(cores=cores, memory=memory, gpus=0, storage=storage)}
        )
        for site in DEFAULT_SITES
    ]
    return FederationConfig(data_dir=data_dir, port=0, sites=sites)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--cores", type=int, default=2000)
    parser.add_argument("--memory", type=int, default=16000)
    parser.add_argument("--storage", type=int, default=200000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    federation = start_federation(config(args.data_dir, args.cores, args.memory, args.storage))
    try:
        described = federation.describe()
        described |= {"data_dir": str(args.data_dir.resolve()), "pid": os.getpid()}
        sys.stdout.write(json.dumps(described) + "\n")
        sys.stdout.flush()
        wait_for_stdin_to_close()
    finally:
        federation.stop()


if __name__ == "__main__":
    main()

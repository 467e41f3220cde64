"""A Science Gateway in a process of its own, in front of a running federation's sites.

Run by :class:`children.Child`: builds the gateway exactly as the embedded federation does
(``worksteps.federation.frontdoor.serve_gateway``: the editor and the execution service
inside, the federation's issuer and sites file), with its own databases, prints one JSON line
(its URL) and serves until standard input closes. So its memory (``VmRSS``) is the gateway's
alone, as when ``worksteps serve gateway`` runs it in production.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from children import wait_for_stdin_to_close

from worksteps.core.serving import free_port
from worksteps.emulators.oidc import LocalIssuer
from worksteps.federation import FederationConfig
from worksteps.federation.frontdoor import serve_gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="The gateway's own.")
    parser.add_argument("--federation", type=Path, required=True, help="Its data directory.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    described = json.loads((args.federation / "federation.json").read_text(encoding="utf-8"))
    issuer = LocalIssuer(described["services"]["issuer"])  # only its URL is used
    url = f"http://127.0.0.1:{free_port()}"
    args.data_dir.mkdir(parents=True, exist_ok=True)
    registry_host = described["images"][0].split("/", 1)[0]
    served = serve_gateway(
        FederationConfig(data_dir=args.data_dir, port=0),
        issuer,
        url,
        args.data_dir,
        args.federation / "sites.yaml",
        registry_host,
    )
    try:
        sys.stdout.write(json.dumps({"gateway": served.url, "pid": os.getpid()}) + "\n")
        sys.stdout.flush()
        wait_for_stdin_to_close()
    finally:
        served.stop()


if __name__ == "__main__":
    main()

"""Check an ID token against the API's token contract (docs/api.md "The token contract") before pointing a stage at
an identity provider: the API's own verifier and claim mapping, nothing else.

Run: .venv/bin/python -m scripts.check_token [--issuer ISSUER] [--client-id CLIENT] [--jwks-url URL] TOKEN|-
(the three default to DYJ_COGNITO_ISSUER, DYJ_COGNITO_CLIENT_ID and DYJ_COGNITO_JWKS_URL; `-` reads the token from
standard input). Prints the caller the API would see (exit 0), or the error code it would answer and the reason,
which the API keeps to itself (exit 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from chalicelib.api.auth import TokenVerifier
from chalicelib.api.identity import actor_from_claims
from chalicelib.domain.errors import DomainError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.check_token", description="Check an ID token against the API's token contract."
    )
    parser.add_argument("--issuer", default=os.environ.get("DYJ_COGNITO_ISSUER", ""))
    parser.add_argument("--client-id", default=os.environ.get("DYJ_COGNITO_CLIENT_ID", ""))
    parser.add_argument("--jwks-url", default=os.environ.get("DYJ_COGNITO_JWKS_URL", ""))
    parser.add_argument("token", help="the ID token, or - to read it from standard input")
    args = parser.parse_args(argv)
    if not (args.issuer and args.client_id and args.jwks_url):
        parser.error("--issuer, --client-id and --jwks-url are needed (or DYJ_COGNITO_* in the environment)")
    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
    verifier = TokenVerifier(args.issuer, args.client_id, args.jwks_url)
    try:
        actor = actor_from_claims(verifier.claims(f"Bearer {token}"))
    except DomainError as exc:
        answer = {"status": exc.http_status, **exc.to_dict()}
        if exc.__cause__ is not None:  # why, for the deployer (the API never says)
            answer["reason"] = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
        print(json.dumps(answer, ensure_ascii=False))
        return 1
    print(json.dumps(actor.model_dump(mode="json"), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

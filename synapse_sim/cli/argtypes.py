"""Argument types shared by the command-line modules."""

from __future__ import annotations

import argparse


def int_at_least(minimum: int):
    """An argparse ``type`` accepting integers ``>= minimum`` (one clear message otherwise)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v

    parse.__name__ = f"int_at_least_{minimum}"
    return parse

"""Command line of :mod:`landslide_tf.models.encoder_weights`: list encoders, fetch a preset.

``python -m landslide_tf.cli.encoder_weights`` lists the registered encoders;
``--fetch NAME DIR`` saves NAME's ImageNet preset into DIR for a machine without internet
(then train with ``--encoder-weights DIR``).
"""

from __future__ import annotations

from landslide_tf.cli.common import ArgumentParser, run_cli
from landslide_tf.models.encoder_weights import fetch_preset
from landslide_tf.models.encoders import ENCODERS

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """List the encoders, or ``--fetch NAME DIR``: save NAME's ImageNet preset into DIR."""
    p = ArgumentParser(
        prog="python -m landslide_tf.cli.encoder_weights",
        description="List the pretrained encoders or save one's ImageNet preset for offline use.",
    )
    p.add_argument("--fetch", nargs=2, metavar=("NAME", "DIR"), help="save a preset to DIR")
    args = p.parse_args(argv)

    def body() -> int:
        if not args.fetch:
            for name, spec in ENCODERS.items():
                print(f"{name}: keras-hub {spec.family}, ImageNet preset {spec.preset}")
            return 0
        name, out_dir = args.fetch
        out = fetch_preset(name, out_dir)
        print(f"saved {name} ImageNet weights to {out}: pass --encoder-weights {out}")
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())

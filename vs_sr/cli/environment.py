"""What the process that runs a `vs-sr` command fixes in what it was given before any work: closed
standard streams, a locale the tools it starts cannot use, and relative folders in the variables
that vspipe (started in a work folder of its own) reads again. Light: it runs before the imports."""

from __future__ import annotations

import locale
import os
import sys

from ..paths import FOLDER_VARIABLES

CHILD_LOCALE = "C.UTF-8"  # built into every glibc since 2.35


def prepare() -> None:
    open_closed_streams()
    usable_locale_for_tools()
    absolute_folders()


def open_closed_streams() -> None:
    """A standard stream closed by the caller (`2>&-`, `>&-`) becomes /dev/null. Python leaves it
    None, so the first line printed failed the command (silently, its error being the thing not
    printed), and the next file opened would take its descriptor: where our tools write errors."""
    for descriptor, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(descriptor)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one (the lower ones are open)
            if opened != descriptor:
                os.dup2(opened, descriptor)
                os.close(opened)
        if getattr(sys, name) is None:
            setattr(sys, name, open(descriptor, "r" if descriptor == 0 else "w", closefd=False))  # noqa: SIM115


def usable_locale_for_tools() -> None:
    """The tools get C.UTF-8 where the caller's locale is missing from the system (LANG=de_DE.UTF-8
    in a container: mkvmerge then aborts, "locale::facet::_S_create_c_locale name not valid", after
    the whole upscale) or is not UTF-8 (LC_ALL=C: vspipe's Python cannot open a non-ASCII name,
    while ours runs in UTF-8 mode there)."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        locale.setlocale(locale.LC_ALL, "")
        utf8 = locale.nl_langinfo(locale.CODESET).replace("-", "").upper() == "UTF8"
    except locale.Error:
        utf8 = False
    finally:
        locale.setlocale(locale.LC_ALL, saved)
    if not utf8:
        os.environ["LC_ALL"] = CHILD_LOCALE


def absolute_folders() -> None:
    """$VS_SR_CACHE_DIR and the other folder variables made absolute: vspipe runs in a work folder
    of its own, where a relative one named a folder removed with it (every run quantized again)."""
    for name in FOLDER_VARIABLES:
        value = os.environ.get(name)
        if value:
            os.environ[name] = os.path.abspath(os.path.expanduser(value))

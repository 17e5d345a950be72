"""Commands around the data and the installation: ``plugins``, ``data list|build``, ``cache info|clear``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .shell import Group, setup_logging


# -- plugins -------------------------------------------------------------------------------------------------------------
@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Import every plugin now, even those that loaded before and whose file "
                                            "has not changed since (their description is remembered).")
def plugins(as_json, check):
    """List installed domains, backends and data-recipe source types, where they come from, and any that fail
    to load.

    A plugin that loaded before, and whose file and version are unchanged, is listed from memory (in the cache
    folder) instead of being imported again: importing the backends imports torch, which takes seconds."""
    from dataclasses import asdict

    from .. import registry

    kinds = ("domain", "backend", "recipe source")
    memo = {} if check else registry.read_plugin_memo()
    before = dict(memo)
    infos = [info for kind in kinds for info in registry.describe(kind, memo)]
    if memo != before:
        registry.write_plugin_memo(memo)
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    for kind in kinds:
        click.echo(f"{kind}s:")
        rows = [i for i in infos if i.kind == kind]
        if not rows:
            click.echo("  (none installed)")
        width = max([10] + [len(i.name) for i in rows])
        for i in rows:
            status = f"BROKEN: {i.error}" if i.error else i.description
            click.echo(f"  {i.name:<{width}} {i.distribution} {i.version:<8} {i.value}")
            if status:
                click.echo(f"  {'':<{width}} {status}")


# -- data ------------------------------------------------------------------------------------------------------------------
@click.group(cls=Group)
def data():
    """List and build data recipes (datasets seqstudio knows how to fetch or prepare)."""


@data.command("list")
def data_list():
    """List the available data recipes."""
    from .. import recipes

    setup_logging()
    for recipe in recipes.list_recipes():
        need = " (needs --source)" if recipe.needs_source else ""
        click.echo(f"{recipe.name:<16} {recipe.domain:<8} {recipe.description}{need}")


@data.command("build")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--source", type=click.Path(path_type=Path), help="Your copy of the data, for recipes that need one.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Build N files in all, shared among the splits as in the whole set (0 = all).")
@click.option("--workers", type=click.IntRange(min=0), default=0, help="Parallel processes (0 = one per core).")
@click.option("--quiet", "-q", is_flag=True)
def data_build(name, dest, source, limit, workers, quiet):
    """Materialise recipe NAME as files in DEST (ready for `seqstudio train DEST`)."""
    from .. import recipes

    setup_logging(quiet)
    result = recipes.build(name, dest, source=source, limit=limit, workers=workers, progress=not quiet)
    extra = f", skipped {result['skipped']} unreadable" if result["skipped"] else ""
    click.echo(f"wrote {result['written']} files to {result['dest']}{extra}")


# -- cache -----------------------------------------------------------------------------------------------------------------
@click.group(cls=Group)
def cache():
    """See and clear the encoding cache ($SEQSTUDIO_CACHE, default ~/.cache/seqstudio)."""


@cache.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def cache_info(as_json):
    """Size of the cache, and per dataset: domain, codec, source folder, files, shards, size, last use."""
    import time

    from .. import cache as cache_mod
    from ..cache import cache_dir

    report = cache_mod.info(cache_dir())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    size = cache_mod.human_bytes
    click.echo(f"{report['path']}: {size(report['bytes'])} in {len(report['datasets'])} dataset(s)")
    if report["prepared"]["runs"]:
        click.echo(f"  prepared  {report['prepared']['runs']} stored preparation(s) of warm starts  "
                   f"{size(report['prepared']['bytes'])}")
    if report["models"]["folders"]:
        click.echo(f"  models    {len(report['models']['folders'])} model(s) unpacked into run directories  "
                   f"{size(report['models']['bytes'])}  {', '.join(report['models']['folders'])}")
    for d in report["datasets"]:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(d["last_used"])) if d["last_used"] else "-"
        old = f", {d['old_entries']} old-format entries" if d["old_entries"] else ""
        click.echo(f"  {d['key']}  {d['domain'] or '?'}/{d['codec'] or '?'}  {d['files']} files in {d['shards']} "
                   f"shard(s){old}  {size(d['bytes'])}  last used {used}  {', '.join(d['sources'])}")


@cache.command("clear")
@click.option("--older-than", metavar="AGE", help="Only what no run has used for AGE (e.g. 30d, 12h, 90m).")
def cache_clear(older_than):
    """Remove the encoding cache (only its own files) and the run directories unpacked from models; the next run
    encodes its files again, and a model is unpacked again when next used."""
    from .. import cache as cache_mod
    from ..cache import cache_dir

    age = cache_mod.parse_age(older_than) if older_than is not None else None
    removed = cache_mod.clear(cache_dir(), age)
    click.echo(f"removed {removed['shards']} shard(s) and {removed['old_entries']} old-format entries "
               f"({cache_mod.human_bytes(removed['bytes'])}) from {cache_dir()}")


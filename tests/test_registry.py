"""Plugins are found through real entry points, exactly as a third-party package would be installed."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from conftest import TINY, invoke
from seqstudio import registry
from seqstudio.errors import PluginError

TOY_MODULE = '''
"""A third-party domain: text files of space-separated MIDI pitches, one token per step."""
from pathlib import Path

import torch

from seqstudio.domain import Codec, CodecConfig, Domain
from seqstudio.errors import DataError
from seqstudio.spec import Categorical, FeatureSpec


class TokenCodec(Codec):
    name = "tokens"
    Config = CodecConfig

    @property
    def spec(self):
        return FeatureSpec([Categorical(128)])

    def encode(self, sample):
        return torch.tensor(sample, dtype=torch.float32).unsqueeze(1)

    def decode(self, x):
        return [int(v) for v in x[:, 0].tolist()]


class ToyDomain(Domain):
    name = "toy"
    description = "pitch lists for tests"
    extensions = (".toy",)
    output_extension = ".toy"
    codecs = {"tokens": TokenCodec}
    default_codec = "tokens"

    def read(self, path):
        try:
            return [int(t) for t in Path(path).read_text().split()]
        except ValueError:
            raise DataError(f"{path}: not a list of pitches") from None

    def write(self, sample, path):
        Path(path).write_text(" ".join(map(str, sample)))


class NotADomain:
    pass
'''


def make_distribution(site: Path, name: str, entry_points: str, module: str | None = None) -> None:
    """Install a distribution the way pip does: a module plus a ``.dist-info`` with entry_points.txt."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    if module is not None:
        (site / f"{name}.py").write_text(module)


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture
def toy_plugin(site) -> Path:
    make_distribution(site, "toyplug", """
        [seqstudio.domains]
        toy = toyplug:ToyDomain
        """, TOY_MODULE)
    return site


def test_builtins_register_through_entry_points():
    assert "midi" in registry.names("domain")
    assert "seqvae" in registry.names("backend")
    info = {i.name: i for i in registry.describe("backend")}["seqvae"]
    assert info.distribution == "seqstudio" and info.error is None


def test_third_party_domain_is_found_and_used_by_train(toy_plugin, tmp_path):
    data = tmp_path / "songs"
    data.mkdir()
    for i in range(12):
        (data / f"s{i}.toy").write_text(" ".join(str(60 + (i * 7 + j) % 12) for j in range(40)))
    listing = invoke("plugins")
    assert "toy" in listing.output and "toyplug" in listing.output
    run_dir = tmp_path / "run"
    result = invoke("train", data, "--run-dir", run_dir, "--max-steps", 3, *TINY, "--set", "codec.window=16")
    assert result.exit_code == 0, result.output
    assert (run_dir / "config.yaml").read_text().startswith("domain: toy")
    out = tmp_path / "out"
    assert invoke("generate", run_dir, "-n", 2, "-o", out, "--length", 10).exit_code == 0
    generated = sorted(out.glob("*.toy"))
    assert len(generated) == 2
    assert all(len(f.read_text().split()) == 10 for f in generated)


def test_broken_plugin_is_reported_not_fatal(site):
    make_distribution(site, "brokenplug", """
        [seqstudio.backends]
        broken = brokenplug_missing_module:Backend
        """)
    result = invoke("plugins")
    assert result.exit_code == 0
    assert "broken" in result.output and "BROKEN" in result.output and "failed to load" in result.output
    assert "seqvae" in result.output  # the others still listed
    with pytest.raises(PluginError, match="failed to load"):
        registry.load_backend("broken")


def test_duplicate_names_are_refused(site):
    make_distribution(site, "dupplug", """
        [seqstudio.backends]
        seqvae = seqstudio.backends.seqvae:SeqVAE
        """)
    with pytest.raises(PluginError, match="more than once"):
        registry.load_backend("seqvae")


def test_wrong_base_class_is_refused(toy_plugin, site):
    make_distribution(site, "wrongplug", """
        [seqstudio.domains]
        wrong = toyplug:NotADomain
        """)
    with pytest.raises(PluginError, match="not a subclass"):
        registry.load_domain("wrong")


def test_unknown_name_lists_the_installed_ones():
    with pytest.raises(PluginError) as err:
        registry.load_backend("nope")
    assert "seqvae" in str(err.value)


DRUMS_MODULE = TOY_MODULE.replace('name = "toy"', 'name = "drums"').replace('(".toy",)', '(".mid",)')


def test_two_domains_reading_the_same_files_is_an_error_naming_both(site, chorales, tmp_path):
    """A third-party domain that reads .mid must not silently take MIDI folders (nor lose them alphabetically)."""
    from test_errors import assert_clean_error

    make_distribution(site, "drumplug", """
        [seqstudio.domains]
        drums = drumplug:ToyDomain
        """, DRUMS_MODULE)
    data = tmp_path / "midi"  # no seqstudio.yaml: the domain comes from the files alone
    data.mkdir()
    for f in sorted(chorales.glob("*.mid")):
        shutil.copy(f, data / f.name)
    assert_clean_error(invoke("train", data, "--max-steps", 1, *TINY), "several installed domains", "drums",
                       "midi", "--domain")
    with pytest.raises(registry.AmbiguousDomain) as err:
        registry.domain_for_path(data)
    assert err.value.candidates == ["drums", "midi"]
    assert_clean_error(invoke("render", next(data.glob("*.mid")), "-o", tmp_path / "x.png"), "drums", "midi",
                       "--domain")
    run_dir = tmp_path / "run"
    result = invoke("train", data, "--domain", "midi", "--run-dir", run_dir, "--max-steps", 1, *TINY)
    assert result.exit_code == 0, result.output
    assert (run_dir / "config.yaml").read_text().startswith("domain: midi")

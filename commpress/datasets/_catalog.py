"""The LibSVM datasets commpress knows by name: size, labels and checksums.

Numbers and sha256 sums are those of the copies checked against the published LibSVM statistics
(the copies shipped in ``commpress/datasets/data``, see its README). ``sha256_gz`` is the hash of the ``gzip -9 -n``
file, ``sha256_raw`` the hash of the uncompressed text: a copy is accepted when it matches
either (a plain-text copy is what :func:`commpress.datasets.fetch` stores).
"""

from __future__ import annotations

from dataclasses import dataclass

LIBSVM_BINARY_URL = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/"


@dataclass(frozen=True)
class DatasetInfo:
    """Facts of one known LibSVM file.

    ``labels`` maps each label value (as published) to its count. ``verbatim`` is False when
    the checked copy is not byte-identical to the LibSVM original (madelon, rebuilt from the
    UCI files): the LibSVM download may then fail the checksum (see :func:`fetch`).
    """

    name: str
    n_features: int
    rows: int
    labels: dict[float, int]
    sha256_gz: str
    sha256_raw: str
    verbatim: bool = True

    @property
    def url(self) -> str:
        return LIBSVM_BINARY_URL + self.name


def _info(name, n_features, rows, labels, gz, raw, verbatim=True):
    return DatasetInfo(name, n_features, rows, labels, gz, raw, verbatim)


KNOWN: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        _info("a9a", 123, 32561, {-1.0: 24720, 1.0: 7841},
              "b301f3e87350539f3ebc751d07b4691a8c66f0bf38c1d179c86bbf5e2d9623b2",
              "f5d5ffd8d865ff41328e7ee043e4b020816914ff6843ff15b98905ddbedce906"),
        _info("a9a.t", 123, 16281, {-1.0: 12435, 1.0: 3846},
              "92967561181c73a60149cc8221b936eb746573fda8cbf483115d673f42b26c3f",
              "1f448a153f0320399a7e40836eb207655b0bde0f21fc941cc472193daa9f5de9"),
        _info("a5a", 123, 6414, {-1.0: 4845, 1.0: 1569},
              "6fc4addd6bd2eb31ab57b9625800fb7ff1410c580c4662e4990fbaf6e99350ee",
              "5cb3a6603de0a0eb43afcdd45b1820c71ee7f20da1c09f054696bb71cbc45ad8"),
        _info("mushrooms", 112, 8124, {1.0: 3916, 2.0: 4208},
              "c6170f9d3de835051acced088f85c13c96d23038d950b31684d793d5c7be21bd",
              "f39a4eb628dc61a7d43760815b061c9e497aa728ce1ad8bde57a09ef6043b538"),
        _info("madelon", 500, 2000, {-1.0: 1000, 1.0: 1000},
              "5a50ab895b1a87551c4b5a6717db26c1bc51549bf4657afc729d2f70de881295",
              "34f9d790481f42d468c4a59515e6c7bb1dcfa5b0c5339e584b998db13f2d6464", verbatim=False),
        _info("madelon.t", 500, 600, {-1.0: 300, 1.0: 300},
              "6650f1a24a7de44bf846782d2a685c0e7b4c459d90b9395a0826cb334b0bec58",
              "ae60251b63a46c6ace348b77749e79e25d4098d629d1dead2852c3d4daf1f8ea"),
        _info("splice", 60, 1000, {-1.0: 483, 1.0: 517},
              "640cfe527434d372cf372ec57f65040c2c93542477475a93ce0a2725d55d7072",
              "eee33566cfe8988ec26122460cc712d66c5c5b79b966b259408e803addaa584d"),
        _info("splice.t", 60, 2175, {-1.0: 1044, 1.0: 1131},
              "63cd804c221369cbd98e007a7908d98fc8f5bfa0321258dcb44497b032d0b5af",
              "f40da7cfd17860f3f1a1bb7d118f8e86c306d232ca6ac6ddefbaaef266abaa03"),
        _info("w8a", 300, 49749, {-1.0: 48270, 1.0: 1479},
              "bbb05ebf2874051515c57bb657ee66dfa1cec7293005d6bc0eaf255d45d9befb",
              "6a9fa8fd5f524303240a5db07d4b3d4a51e8b7b4b20a914105d8e3e8c81640f2"),
        _info("phishing", 68, 11055, {0.0: 4898, 1.0: 6157},
              "ef3c8253cb6ac33b2849c2c4cee00c4199afe31ecb373c198bbc7e203829b082",
              "0cf66ef36604c393da9359b2e5d894a2df8aee31fd184633cefa138add2ef08a"),
    )
}

#: MNIST IDX files (official test split): file name -> sha256 of the .gz file.
MNIST_FILES: dict[str, str] = {
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

"""Build the issue-18 spike (rdkafka_native) into bench/native/build/, never committed.

    .venv/bin/python bench/native/setup.py        (or: make bench-native)

Links against the librdkafka that the installed confluent-kafka wheel ships
(site-packages/confluent_kafka.libs/librdkafka-<hash>.so.1): the extension's DT_NEEDED is that
library's soname and its RPATH that directory, so the process loads ONE librdkafka, the one
confluent-kafka's own extension loads. Declarations come from rdkafka_api.h (written from
librdkafka's public C API; no rdkafka.h is installed or needed). Not the package's setup.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"


def wheel_librdkafka() -> Path:
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if len(found) != 1:
        raise SystemExit(f"expected one librdkafka in {libs}, found {found}: a confluent-kafka "
                         "wheel that bundles librdkafka is needed")
    return found[0]


def main() -> None:
    from Cython.Build import cythonize
    from setuptools import Extension, setup

    lib = wheel_librdkafka()
    ext = Extension(
        "rdkafka_native",
        [str(HERE / "rdkafka_native.pyx")],
        include_dirs=[str(HERE)],
        extra_objects=[str(lib)],
        runtime_library_dirs=[str(lib.parent)],
        extra_compile_args=["-O2"],
    )
    setup(
        name="cstreams-bench-native",
        ext_modules=cythonize(
            [ext], build_dir=str(BUILD / "c"), include_path=[str(HERE)], quiet=True,
            compiler_directives={"language_level": 3, "embedsignature": True},
        ),
        script_args=["build_ext", "--build-lib", str(BUILD), "--build-temp", str(BUILD / "tmp")],
    )
    print(f"built {BUILD} against {lib}", file=sys.stderr)


if __name__ == "__main__":
    main()

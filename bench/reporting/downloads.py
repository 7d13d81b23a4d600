"""The files of the Downloads page: the run table as CSV and Parquet, the records, manifest and configuration.

Every file is built from the stored results in memory and is byte-identical
for the same results, so a report written twice from unchanged results does
not change.
"""

import io
import zipfile

from bench.errors import BenchError
from bench.reporting.markdown import code, counted, pipe_table
from bench.reporting.provenance import CONFIG_FILE, config_toml
from bench.reporting.results import NOISE_COLUMN

DOWNLOADS_FOLDER = "downloads"
RECORDS_FOLDER = "records"
ARCHIVE = "results.zip"
PARQUET = "runs.parquet"
# A fixed timestamp for every archive member, the earliest that ZIP can store, so the archive does not change with the clock.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
INTEGER_COLUMNS = ("repetition", "seed")
NULLABLE_INTEGER_COLUMNS = ("formula_size",)


def download_files(results):
    """Return every download file as bytes, keyed by its path relative to the downloads folder."""
    files = {
        "runs.csv": (results.directory / "runs.csv").read_bytes(),
        PARQUET: runs_parquet(results.runs),
        "manifest.json": (results.directory / "manifest.json").read_bytes(),
        CONFIG_FILE: config_toml(results).encode("utf-8"),
    }
    for key in results.runs["key"]:
        files[f"{RECORDS_FOLDER}/{key}.json"] = results.record_bytes(key)
    files[ARCHIVE] = _archive({name: data for name, data in files.items() if name != PARQUET})
    return files


def runs_parquet(runs):
    """Return the run table as Parquet bytes, with integer seeds and repetitions and no pandas metadata.

    The schema metadata that pyarrow adds from pandas names the pandas
    version. It is dropped, so the file depends only on the runs and the
    pyarrow version.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BenchError(
            "pyarrow is not installed, and the Downloads page offers the runs as Parquet. "
            "Install the project with the 'render' extra: pip install -e '.[render]'."
        ) from None

    table = runs.copy()
    for column in INTEGER_COLUMNS:
        table[column] = table[column].astype("int64")
    for column in NULLABLE_INTEGER_COLUMNS:
        table[column] = table[column].astype("Int64")
    arrow = pa.Table.from_pandas(table, preserve_index=False).replace_schema_metadata(None)
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd")
    return buffer.getvalue()


def downloads_section(files, prefix):
    """Return the Markdown table of the download files with their sizes, then the link to each run's record.

    ``prefix`` is the downloads folder relative to the including page.
    """
    descriptions = {
        "runs.csv": "one row per run: method, noise level, repetition, seed, status, reason, metrics, seconds and formula",
        PARQUET: "the same runs in Parquet, sorted by method, noise level and repetition, with numeric columns typed",
        "manifest.json": "the configuration, versions, machine and git commit of the bench",
        CONFIG_FILE: "the configuration as TOML, for `--config`",
        ARCHIVE: "runs.csv, manifest.json, config.toml and every record, in one ZIP archive",
    }
    rows = [[f"[{code(name)}]({prefix}/{name})", text, _size(len(files[name]))] for name, text in descriptions.items()]
    records = sorted(name for name in files if name.startswith(f"{RECORDS_FOLDER}/"))
    total = sum(len(files[name]) for name in records)
    rows.append([
        code(f"{RECORDS_FOLDER}/<key>.json"),
        f"the full record of each run, {counted(len(records), 'file')}, linked one by one below",
        _size(total),
    ])
    return pipe_table(("File", "Contents", "Size"), rows, align="llr") + "\n\n: Files of the stored results.\n"


def records_section(runs, prefix):
    """Return a table with one row per run and the link to its JSON record under ``prefix``.

    A Noise level column is added when the runs hold more than one noise level.
    """
    several_levels = runs[NOISE_COLUMN].nunique() > 1
    rows = []
    for run in runs.itertuples(index=False):
        level = [f"{getattr(run, NOISE_COLUMN):g}"] if several_levels else []
        rows.append([code(run.method), *level, str(int(run.repetition)), run.status,
                     f"[{code(run.key)}]({prefix}/{RECORDS_FOLDER}/{run.key}.json)"])
    header = ("Method", *(("Noise level",) if several_levels else ()), "Repetition", "Status", "Record")
    align = "l" + ("r" if several_levels else "") + "rll"
    return pipe_table(header, rows, align=align) + "\n\n: The record of every run.\n"


def _archive(files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(files):
            member = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, files[name])
    return buffer.getvalue()


def _size(count):
    """Format a byte count in B, KiB or MiB, with a no-break space before the unit."""
    if count < 1024:
        return f"{count}\u00a0B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f}\u00a0KiB"
    return f"{count / (1024 * 1024):.1f}\u00a0MiB"

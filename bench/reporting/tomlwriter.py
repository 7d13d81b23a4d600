"""Write a configuration as TOML that ``--config`` reads back to the same values.

The standard library reads TOML (tomllib) but does not write it, and the
configuration holds only tables, strings, numbers, booleans and lists of
them, so a small writer does.
"""

import json
import math
import re

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(table):
    """Return ``table``, a dict of dicts and values, as a TOML document.

    Each nested dict becomes a ``[dotted.header]`` table after the values of
    its parent. Raises TypeError for a value TOML cannot hold here, such as
    None or a list of tables.
    """
    lines = []
    _write_table(lines, (), table)
    return "\n".join(lines).strip() + "\n"


def _write_table(lines, path, table):
    values = [(key, value) for key, value in table.items() if not isinstance(value, dict)]
    tables = [(key, value) for key, value in table.items() if isinstance(value, dict)]
    if path and (values or not tables):
        lines += ["", f"[{'.'.join(_key(part) for part in path)}]"]
    for key, value in sorted(values):
        lines.append(f"{_key(key)} = {_value(value, path + (key,))}")
    for key, value in sorted(tables):
        _write_table(lines, path + (key,), value)


def _key(key):
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value, path):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        # repr gives the shortest text that reads back to the same float, such as 0.01 or 1e-05, all valid TOML.
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string: the same escapes, \uXXXX included.
        return json.dumps(value)
    if isinstance(value, list):
        if any(isinstance(item, dict) for item in value):
            raise TypeError(f"{'.'.join(path)} is a list of tables, which this writer does not support")
        return "[" + ", ".join(_value(item, path) for item in value) + "]"
    raise TypeError(f"{'.'.join(path)} = {value!r} has type {type(value).__name__}, which TOML cannot hold")

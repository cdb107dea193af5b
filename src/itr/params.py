"""params.yaml as a whole: read it (YAML errors name file, line and column), validate it against the schema
(unknown keys named with the closest valid one) and against the rules across keys the schema cannot state.

The sections themselves, their dataclasses and the single-section checks are itr.config.

Example:
    >>> params = load_params("params.yaml")          # raises ConfigError naming every bad key
    >>> sorted(section_keys("evaluation"))
    ['ks', 'n_folds', 'protocols', 'subset_size']
"""
from __future__ import annotations

import difflib
import math
from pathlib import Path

import yaml

from itr.config import SCHEMA_PATH, SECTIONS, ConfigError, number_items, schema


def _known_keys(tree: dict, path: list[str]) -> list[str]:
    node = tree
    for part in path:
        props = node.get("properties", {})
        node = props.get(part) or node.get("additionalProperties") or {}
    return sorted(node.get("properties", {}))


def validate_params(params: dict, source: str = "params.yaml") -> dict:
    """Validate a params mapping against the JSON schema; raise ConfigError naming every bad key."""
    import jsonschema

    tree = schema()
    validator = jsonschema.Draft202012Validator(tree)
    problems = []
    for err in sorted(validator.iter_errors(params), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in err.path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            for key in extra:
                full = f"{where}.{key}" if where else key
                close = difflib.get_close_matches(key, _known_keys(tree, [str(p) for p in err.path]), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                problems.append(f"unknown key '{full}'.{hint}")
        else:
            problems.append(f"'{where or '<root>'}': {err.message}" + _from_the_command_line(err))
    if not problems:  # the cross-field rules assume the types and keys the schema guarantees
        problems = consistency_problems(params)
    if problems:
        raise ConfigError(
            f"{source} is invalid:\n  - " + "\n  - ".join(problems)
            + f"\nFix the keys above; the allowed keys are in {SCHEMA_PATH}."
        )
    return params


def _from_the_command_line(err) -> str:
    """A hint for a list item that is a string spelling the number or boolean the schema wants: Snakemake's --config
    parses ``seeds=[0,1,2,3,4]`` into the strings '0', '1', ... (scalars it parses), so the fix is a yaml file."""
    import yaml

    wanted = {"integer": int, "number": (int, float), "boolean": bool}.get(err.validator_value)
    if not (err.validator == "type" and isinstance(err.instance, str) and err.path and isinstance(err.path[-1], int)
            and wanted):
        return ""
    try:
        parsed = yaml.safe_load(err.instance)
    except yaml.YAMLError:
        return ""
    if not isinstance(parsed, wanted) or (wanted is not bool and isinstance(parsed, bool)):
        return ""
    return (" (a list item given as a string: Snakemake's --config reads list items as strings; put the list in a "
            "yaml file, e.g. seeds.yaml, and pass it with --configfile seeds.yaml)")


def consistency_problems(params: dict) -> list[str]:
    """What the schema cannot say: rules across keys (one line per broken rule; none when consistent).

    * every number is finite (YAML's ``.nan`` and ``.inf`` pass the schema's minimums);
    * ``dataset`` names ShapeCaptions or a real dataset declared under ``datasets``;
    * each section's own rules (``cross_problems``: ``shapes.min_objects`` <= ``shapes.max_objects``);
    * the test split fits the protocols of ``evaluation.protocols`` and ``rerank.protocol``
      (itr.protocols.protocol_problems; each paper's plan checks the protocols of its own tables).
    """
    from itr.protocols import protocol_problems

    problems = [f"'{where}': {value} is not a finite number" for where, value in number_items(params)
                if not math.isfinite(value)]
    for name, cls in SECTIONS.items():
        if name in params:
            problems += cls.cross_problems(params[name])
    if "dataset" in params and params["dataset"] != "shapes" and params["dataset"] not in params.get("datasets", {}):
        problems.append(f"'dataset': {params['dataset']!r} is neither shapes nor a name under 'datasets' "
                        f"({sorted(params.get('datasets', {}))})")
    # a real dataset's test split size is no param: its evaluation checks the protocols when it runs
    if all(k in params for k in ("shapes", "evaluation", "rerank")) and params.get("dataset", "shapes") == "shapes":
        problems += protocol_problems(params, [*params["evaluation"]["protocols"], params["rerank"]["protocol"]])
    return problems


def section_keys(name: str) -> set[str]:
    """Every key the schema allows in params section ``name``."""
    return set(schema()["properties"][name].get("properties", {}))


def read_yaml(path: str | Path) -> dict:
    """A YAML mapping from a file; a syntax error names the file, line and column (not a parser traceback)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} not found; run from the repository root or name the file "
                          "(itr params check PATH).")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(e, 'problem', None) or e}); fix the file there") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of params sections, got {type(data).__name__}")
    return data


def load_params(path: str | Path) -> dict:
    """Read and validate a params YAML file."""
    return validate_params(read_yaml(path), source=str(path))

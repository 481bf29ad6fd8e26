"""A small JSON-Schema (draft 2020-12 subset) validator for the light import path.

``jsonschema`` takes ~0.1-0.2 s to import, more than the rest of a cold
``python -m fitting.estimate``; the coefficient schema only needs the common keywords, so
the estimator validates with this. A schema using a keyword not listed in
:data:`SUPPORTED` is handed to ``jsonschema`` (imported only then), so nothing is checked
less strictly. ``tests/test_estimator.py`` checks that both validators agree on the
project's schema.
"""

from __future__ import annotations

import re

SUPPORTED = frozenset({
    "type", "enum", "const", "required", "properties", "additionalProperties", "patternProperties",
    "items", "prefixItems", "minItems", "maxItems", "uniqueItems", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "anyOf", "oneOf",
    "allOf", "not", "$ref", "if", "then", "else", "minProperties", "maxProperties",
    "dependentRequired", "propertyNames", "multipleOf",
    # annotations: no effect on validity
    "$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "default",
    "examples", "format", "deprecated", "readOnly", "writeOnly", "$anchor", "contentMediaType",
})


class UnsupportedSchema(Exception):
    """The schema uses a keyword this validator does not implement."""


def _type_ok(value, t):
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    raise UnsupportedSchema(f"type {t!r}")


def _equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _resolve(root, ref):
    if not ref.startswith("#"):
        raise UnsupportedSchema(f"non-local $ref {ref!r}")
    node = root
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def iter_errors(instance, schema, root=None, path=()):
    """Yield ``(path, message)`` for every violation of ``schema`` by ``instance``."""
    if root is None:
        root = schema
    if schema is True:
        return
    if schema is False:
        yield path, "no value is allowed here"
        return
    unknown = set(schema) - SUPPORTED
    if unknown:
        raise UnsupportedSchema(", ".join(sorted(unknown)))
    if "$ref" in schema:
        yield from iter_errors(instance, _resolve(root, schema["$ref"]), root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(instance, t) for t in types):
            yield path, f"{instance!r} is not of type {' or '.join(types)}"
            return
    if "enum" in schema and not any(_equal(instance, e) for e in schema["enum"]):
        yield path, f"{instance!r} is not one of {schema['enum']}"
    if "const" in schema and not _equal(instance, schema["const"]):
        yield path, f"{instance!r} is not {schema['const']!r}"
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            yield path, f"{instance} is less than the minimum {schema['minimum']}"
        if "maximum" in schema and instance > schema["maximum"]:
            yield path, f"{instance} is greater than the maximum {schema['maximum']}"
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            yield path, f"{instance} is not greater than {schema['exclusiveMinimum']}"
        if "exclusiveMaximum" in schema and instance >= schema["exclusiveMaximum"]:
            yield path, f"{instance} is not less than {schema['exclusiveMaximum']}"
        if "multipleOf" in schema and (instance / schema["multipleOf"]) % 1:
            yield path, f"{instance} is not a multiple of {schema['multipleOf']}"
    if isinstance(instance, str):
        if "minLength" in schema and len(instance) < schema["minLength"]:
            yield path, f"{instance!r} is shorter than {schema['minLength']}"
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            yield path, f"{instance!r} is longer than {schema['maxLength']}"
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            yield path, f"{instance!r} does not match {schema['pattern']!r}"
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            yield path, f"expected at least {schema['minItems']} items, got {len(instance)}"
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            yield path, f"expected at most {schema['maxItems']} items, got {len(instance)}"
        if schema.get("uniqueItems"):
            seen = []
            for item in instance:
                if any(_equal(item, s) for s in seen):
                    yield path, f"{item!r} is repeated (items must be unique)"
                    break
                seen.append(item)
        prefix = schema.get("prefixItems", [])
        for i, (item, sub) in enumerate(zip(instance, prefix)):
            yield from iter_errors(item, sub, root, path + (i,))
        if "items" in schema:
            for i in range(len(prefix), len(instance)):
                yield from iter_errors(instance[i], schema["items"], root, path + (i,))
    if isinstance(instance, dict):
        for name in schema.get("required", []):
            if name not in instance:
                yield path + (name,), "required field is missing"
        if "minProperties" in schema and len(instance) < schema["minProperties"]:
            yield path, f"expected at least {schema['minProperties']} fields"
        if "maxProperties" in schema and len(instance) > schema["maxProperties"]:
            yield path, f"expected at most {schema['maxProperties']} fields"
        for name, needs in schema.get("dependentRequired", {}).items():
            if name in instance:
                for other in needs:
                    if other not in instance:
                        yield path, f"{other!r} is required when {name!r} is present"
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if "propertyNames" in schema:
                yield from iter_errors(key, schema["propertyNames"], root, path + (key,))
            matched = False
            if key in props:
                matched = True
                yield from iter_errors(value, props[key], root, path + (key,))
            for pat, sub in patterns.items():
                if re.search(pat, key):
                    matched = True
                    yield from iter_errors(value, sub, root, path + (key,))
            if not matched:
                if extra is False:
                    yield path + (key,), "additional field is not allowed"
                elif isinstance(extra, dict):
                    yield from iter_errors(value, extra, root, path + (key,))
    for sub in schema.get("allOf", []):
        yield from iter_errors(instance, sub, root, path)
    if "anyOf" in schema:
        if not any(not list(iter_errors(instance, s, root, path)) for s in schema["anyOf"]):
            yield path, f"{_short(instance)} does not match any of the allowed forms (anyOf)"
    if "oneOf" in schema:
        n = sum(not list(iter_errors(instance, s, root, path)) for s in schema["oneOf"])
        if n != 1:
            yield path, f"{_short(instance)} matches {n} of the oneOf forms, expected exactly 1"
    if "not" in schema and not list(iter_errors(instance, schema["not"], root, path)):
        yield path, f"{_short(instance)} matches a form that is not allowed (not)"
    if "if" in schema:
        if not list(iter_errors(instance, schema["if"], root, path)):
            if "then" in schema:
                yield from iter_errors(instance, schema["then"], root, path)
        elif "else" in schema:
            yield from iter_errors(instance, schema["else"], root, path)


def _short(value):
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def format_path(path) -> str:
    """``("specs", "seed", "params", 0)`` -> ``specs.seed.params[0]`` (``<root>`` if empty)."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


def first_error(instance, schema):
    """``(path, message)`` of the first violation, or None. Falls back to jsonschema for
    schemas using keywords not implemented here."""
    try:
        for err in iter_errors(instance, schema):
            return err
        return None
    except UnsupportedSchema:
        import jsonschema  # lazy: only for schemas beyond this subset (estimator cold start)

        cls = jsonschema.validators.validator_for(schema)
        for err in sorted(cls(schema).iter_errors(instance), key=lambda e: list(e.absolute_path)):
            return tuple(err.absolute_path), err.message
        return None

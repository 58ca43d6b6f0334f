"""`@tool`: schemas from signatures, strict-mode compatibility, validation, timeouts."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

import pytest
from openai.lib._pydantic import _ensure_strict_json_schema
from pydantic import BaseModel, Field

from agentflow import Tool, ToolDefinitionError, tool
from agentflow.core.output import OutputSchema
from agentflow.core.tool import ToolArgumentsError, as_tool, parse_docstring, to_observation

# -- helpers ------------------------------------------------------------------------------------


def _resolve(root: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"non-local $ref {ref!r}"
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        assert isinstance(target, dict) and part in target, f"$ref {ref!r} does not resolve"
        target = target[part]
    return target


def walk_schemas(schema: Any, root: dict[str, Any] | None = None, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every (sub)schema in `schema`, schema-aware: keys of `properties`/`$defs` are names, not keywords."""
    root = schema if root is None else root
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(schema, dict):
        return found
    found.append((path, schema))
    if isinstance(schema.get("$ref"), str):
        _resolve(root, schema["$ref"])  # every $ref must resolve
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        if isinstance(schema.get(key), dict):
            for name, sub in schema[key].items():
                found += walk_schemas(sub, root, f"{path}/{key}/{name}")
    for key in ("items", "additionalProperties", "not", "contains", "if", "then", "else"):
        if isinstance(schema.get(key), dict):
            found += walk_schemas(schema[key], root, f"{path}/{key}")
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            for i, sub in enumerate(schema[key]):
                found += walk_schemas(sub, root, f"{path}/{key}/{i}")
    return found


def assert_strict(schema: dict[str, Any]) -> None:
    """What OpenAI strict mode requires, plus Anthropic's basic requirement on the top level."""
    # Anthropic: input_schema must be an object schema at the top level.
    assert schema.get("type") == "object"
    assert not {"anyOf", "oneOf", "allOf", "$ref"} & set(schema), "top level must be a plain object schema"
    objects = 0
    for path, sub in walk_schemas(schema):
        assert "default" not in sub, f"{path} has a default"
        if sub.get("type") == "object" or "properties" in sub:
            objects += 1
            assert sub.get("additionalProperties") is False, f"{path} is not closed"
            assert sub.get("required") == list(sub.get("properties", {})), f"{path}: not every property required"
        if "$ref" in sub:
            assert len(sub) == 1, f"{path}: a $ref with siblings is not allowed in strict mode: {sub}"
    assert objects >= 1


def sdk_strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI SDK's own strict conversion of a copy of `schema`."""
    c = copy.deepcopy(schema)
    return _ensure_strict_json_schema(c, path=(), root=c)


# -- types used by the tools --------------------------------------------------------------------


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Priority(int, Enum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    street: str
    city: str = Field(description="The city")
    zip: str | None = None


class Item(BaseModel):
    sku: str
    quantity: int = 1
    color: Color = Color.RED


class Order(BaseModel):
    """An order."""

    items: list[Item]
    shipping: Address = Field(description="Where to ship the order")
    billing: Address | None = Field(None, description="Billing address, if different")
    priority: Priority = Priority.LOW
    note: Literal["gift", "normal"] = "normal"


class Node(BaseModel):
    name: str
    children: list[Node] = []


# -- sample tools covering many signatures -----------------------------------------------------


@tool
def add(a: int, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
def place_order(order: Order, dry_run: bool = False) -> str:
    """Place an order."""
    return "ok"


@tool
def ship(items: list[Item], to: Annotated[Address, "The destination"], express: bool | None = None) -> str:
    """Ship items."""
    return "shipped"


@tool
def paint(color: Color, shade: Annotated[Color, "Accent colour"] = Color.GREEN,
          level: Priority = Priority.HIGH, mode: Literal["fast", "slow"] = "fast",
          single: Literal["only"] = "only") -> str:
    """Paint."""
    return "painted"


@tool
def search(query: str, limit: int = 10, tags: list[str] = [], since: str | None = None,  # noqa: B006
           exact: int | None = None) -> list[str]:
    """Search things."""
    return []


@tool
def tree(root: Node) -> int:
    """Count nodes."""
    return 1


@tool
def keywordish(title: str, default: int = 3, type: str = "x", properties: list[str] | None = None) -> str:
    """Parameters named like JSON-schema keywords."""
    return title


@tool
def nothing() -> str:
    """No parameters at all."""
    return "nothing"


SAMPLE_TOOLS = [add, place_order, ship, paint, search, tree, keywordish, nothing]


def sample_schemas() -> list[Any]:
    params = [pytest.param(t.spec.parameters, id=t.name) for t in SAMPLE_TOOLS]
    params += [
        pytest.param(OutputSchema(Order).schema, id="output-Order"),
        pytest.param(OutputSchema(int).schema, id="output-int"),
        pytest.param(OutputSchema(list[Item]).schema, id="output-list-Item"),
        pytest.param(OutputSchema(Node).schema, id="output-recursive-Node"),
    ]
    return params


# -- strict mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", sample_schemas())
def test_schema_is_a_fixed_point_of_the_openai_sdk_strict_conversion(schema: dict[str, Any]) -> None:
    before = copy.deepcopy(schema)
    assert sdk_strict(schema) == schema
    assert schema == before  # the check itself did not mutate our schema


@pytest.mark.parametrize("schema", sample_schemas())
def test_schema_is_structurally_strict(schema: dict[str, Any]) -> None:
    assert_strict(schema)


def test_the_structural_check_catches_a_non_strict_schema() -> None:
    """The checker above is not vacuous: a plain pydantic schema fails it (and is not a fixed point)."""
    raw = Order.model_json_schema()
    with pytest.raises(AssertionError):
        assert_strict(raw)
    assert sdk_strict(raw) != raw


def test_model_field_with_description_referencing_a_def_is_inlined() -> None:
    order = place_order.spec.parameters["properties"]["order"]
    order = _resolve(place_order.spec.parameters, order["$ref"]) if "$ref" in order else order
    shipping = order["properties"]["shipping"]
    assert "$ref" not in shipping
    assert shipping["description"] == "Where to ship the order"
    assert shipping["type"] == "object"
    assert set(shipping["properties"]) == {"street", "city", "zip"}
    assert shipping["additionalProperties"] is False
    # The Annotated description on a model-typed parameter keeps the model's structure too.
    to = ship.spec.parameters["properties"]["to"]
    assert to["description"] == "The destination"
    assert to["type"] == "object" and set(to["properties"]) == {"street", "city", "zip"}


def test_json_schema_keyword_like_parameter_names_are_kept() -> None:
    params = keywordish.spec.parameters
    assert list(params["properties"]) == ["title", "default", "type", "properties"]
    assert params["required"] == ["title", "default", "type", "properties"]
    assert params["properties"]["title"] == {"type": "string"}


# -- schema from type hints ---------------------------------------------------------------------


def test_primitive_types_and_required() -> None:
    params = add.spec.parameters
    assert params["type"] == "object"
    assert params["properties"]["a"] == {"type": "integer"}
    assert params["properties"]["b"] == {"type": "number"}
    assert params["required"] == ["a", "b"]
    assert params["additionalProperties"] is False
    assert nothing.spec.parameters["properties"] == {}
    assert nothing.spec.parameters["required"] == []


def test_spec_name_and_description_from_function_and_docstring() -> None:
    assert add.name == "add" and add.spec.name == "add"
    assert add.description == "Add two numbers." == add.spec.description

    @tool(name="sum-two", description="Custom description")
    def summer(a: int) -> int:
        """Docstring summary."""
        return a

    assert summer.spec.name == "sum-two"
    assert summer.spec.description == "Custom description"

    @tool
    def undocumented(a: int) -> int:
        return a

    assert undocumented.spec.description == ""


def test_annotated_string_becomes_description() -> None:
    @tool
    def weather(city: Annotated[str, "The city name"], days: Annotated[int, "How many days"] = 1) -> str:
        """Weather."""
        return city

    props = weather.spec.parameters["properties"]
    assert props["city"] == {"type": "string", "description": "The city name"}
    assert props["days"]["description"] == "How many days"
    assert {"type": "null"} in props["days"]["anyOf"]


def test_annotated_keeps_other_metadata_alongside_the_description() -> None:
    @tool
    def pick(n: Annotated[int, Field(ge=1, le=5), "How many"]) -> int:
        return n

    assert pick.spec.parameters["properties"]["n"] == {
        "type": "integer", "minimum": 1, "maximum": 5, "description": "How many"}
    with pytest.raises(ToolArgumentsError, match="n"):
        pick.validate({"n": 9})


def test_annotated_field_description_is_kept() -> None:
    @tool
    def count(n: Annotated[int, Field(description="How many items")]) -> int:
        return n

    assert count.spec.parameters["properties"]["n"].get("description") == "How many items"


def test_google_docstring_params() -> None:
    @tool
    def weather(city: str, units: str = "metric") -> str:
        """Get the weather.

        Args:
            city (str): The city name,
                e.g. Paris: the capital.
            units: Either metric or imperial.

        Returns:
            dict: the forecast.
        """
        return city

    props = weather.spec.parameters["properties"]
    assert weather.spec.description == "Get the weather."
    assert props["city"]["description"] == "The city name, e.g. Paris: the capital."
    assert props["units"]["description"] == "Either metric or imperial."


def test_numpy_docstring_params() -> None:
    @tool
    def weather(city: str, units: str) -> str:
        """Get the weather.

        Parameters
        ----------
        city : str
            The city name.
            Second line: more.
        units : {"metric", "imperial"}
            The units.

        Returns
        -------
        dict
            The forecast.
        """
        return city

    props = weather.spec.parameters["properties"]
    assert weather.spec.description == "Get the weather."
    assert props["city"]["description"] == "The city name. Second line: more."
    assert props["units"]["description"] == "The units."


def test_sphinx_docstring_params() -> None:
    @tool
    def weather(city: str, units: str) -> str:
        """Get the weather.

        :param city: The city name.
            continued here.
        :param str units: The units.
        :type city: str
        :returns: the forecast.
        """
        return city

    props = weather.spec.parameters["properties"]
    assert weather.spec.description == "Get the weather."
    assert props["city"]["description"] == "The city name. continued here."
    assert props["units"]["description"] == "The units."


def test_annotated_description_wins_over_docstring() -> None:
    @tool
    def f(x: Annotated[str, "from Annotated"]) -> str:
        """F.

        Args:
            x: from the docstring
        """
        return x

    assert f.spec.parameters["properties"]["x"]["description"] == "from Annotated"


def test_parse_docstring_summary_keeps_paragraphs_and_ignores_sections() -> None:
    summary, params = parse_docstring("Line one.\n\nMore detail.\n\nRaises:\n    ValueError: when bad.\n")
    assert summary == "Line one.\n\nMore detail."
    assert params == {}


def test_pydantic_model_parameter() -> None:
    params = place_order.spec.parameters
    assert params["required"] == ["order", "dry_run"]
    order_schema = params["properties"]["order"]
    order = _resolve(params, order_schema["$ref"]) if "$ref" in order_schema else order_schema
    assert order["type"] == "object"
    assert order["required"] == ["items", "shipping", "billing", "priority", "note"]
    items = order["properties"]["items"]
    assert items["type"] == "array"
    item = _resolve(params, items["items"]["$ref"]) if "$ref" in items["items"] else items["items"]
    assert set(item["properties"]) == {"sku", "quantity", "color"}


async def test_pydantic_model_argument_is_validated_into_an_instance() -> None:
    seen: list[Order] = []

    @tool
    def submit(order: Order) -> str:
        seen.append(order)
        return "ok"

    await submit.call({"order": {
        "items": [{"sku": "A", "quantity": 2, "color": "green"}],
        "shipping": {"street": "1 Main", "city": "Paris", "zip": None},
        "billing": None, "priority": 2, "note": "gift"}})
    order = seen[0]
    assert isinstance(order, Order)
    assert order.items[0] == Item(sku="A", quantity=2, color=Color.GREEN)
    assert order.shipping.city == "Paris"
    assert order.priority is Priority.HIGH
    assert order.note == "gift"


def test_enum_and_literal_params() -> None:
    params = paint.spec.parameters
    props = params["properties"]
    color = _resolve(params, props["color"]["$ref"]) if "$ref" in props["color"] else props["color"]
    assert color["enum"] == ["red", "green"]
    shade = props["shade"]
    assert shade["description"] == "Accent colour"
    variants = shade["anyOf"]
    assert {"type": "null"} in variants
    assert any(v.get("enum") == ["red", "green"] for v in variants)
    mode_variants = props["mode"]["anyOf"]
    assert {"enum": ["fast", "slow"], "type": "string"} in mode_variants
    assert paint.validate({"color": "red", "shade": None, "level": None, "mode": "slow", "single": None}) == {
        "color": Color.RED, "shade": Color.GREEN, "level": Priority.HIGH, "mode": "slow", "single": "only"}
    with pytest.raises(ToolArgumentsError, match="color"):
        paint.validate({"color": "blue", "shade": None, "level": None, "mode": None, "single": None})
    with pytest.raises(ToolArgumentsError, match="mode"):
        paint.validate({"color": "red", "shade": None, "level": None, "mode": "medium", "single": None})


def test_optional_params_are_nullable_and_required() -> None:
    @tool
    def f(a: int | None, b: int | None = None) -> str:
        return f"{a}-{b}"

    props = f.spec.parameters["properties"]
    assert f.spec.parameters["required"] == ["a", "b"]
    for name in ("a", "b"):
        assert props[name] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert f.validate({"a": None, "b": None}) == {"a": None, "b": None}
    assert f.validate({"a": 1, "b": 2}) == {"a": 1, "b": 2}
    # Optional without a default is still required: omitting it is an error.
    with pytest.raises(ToolArgumentsError, match="a: Field required"):
        f.validate({"b": 1})


def test_defaults_become_nullable_required_and_have_no_default_key() -> None:
    params = search.spec.parameters
    assert params["required"] == ["query", "limit", "tags", "since", "exact"]
    assert params["properties"]["query"] == {"type": "string"}
    assert params["properties"]["limit"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert params["properties"]["tags"] == {"anyOf": [{"items": {"type": "string"}, "type": "array"},
                                                      {"type": "null"}]}
    assert "default" not in json.dumps(params)


async def test_null_for_a_defaulted_param_means_use_the_default() -> None:
    @tool
    def fetch(query: str, limit: int = 10, color: Color = Color.GREEN, mode: Literal["a", "b"] = "b",
              tags: list[str] = ["x"]) -> dict[str, Any]:  # noqa: B006
        return {"query": query, "limit": limit, "color": color, "mode": mode, "tags": tags}

    got = await fetch.call({"query": "q", "limit": None, "color": None, "mode": None, "tags": None})
    assert got == {"query": "q", "limit": 10, "color": Color.GREEN, "mode": "b", "tags": ["x"]}
    # The same, as the JSON text a model writes.
    got = await fetch.call('{"query": "q", "limit": null, "color": null, "mode": null, "tags": null}')
    assert got["limit"] == 10 and got["color"] is Color.GREEN
    # Omitted also means the default; a real value overrides it.
    assert (await fetch.call({"query": "q"}))["limit"] == 10
    assert (await fetch.call({"query": "q", "limit": 3, "color": "red"}))["limit"] == 3


async def test_null_for_a_required_param_is_an_error() -> None:
    with pytest.raises(ToolArgumentsError, match="a"):
        await add.call({"a": None, "b": 1})


async def test_null_for_optional_param_with_none_default_is_none() -> None:
    assert search.validate({"query": "q", "limit": None, "tags": None, "since": None, "exact": None}) == {
        "query": "q", "limit": 10, "tags": [], "since": None, "exact": None}


async def test_null_for_a_defaulted_field_of_a_nested_model_means_use_the_default() -> None:
    # The schema tells the model that Item.quantity is nullable and required ...
    item = ship.spec.parameters["$defs"]["Item"]
    assert {"type": "null"} in item["properties"]["quantity"]["anyOf"]
    # ... so a strict-mode model sends null for it, which must mean "use the default".
    kwargs = ship.validate({"items": [{"sku": "A", "quantity": None, "color": None}],
                            "to": {"street": "s", "city": "c", "zip": None}, "express": None})
    assert kwargs["items"][0] == Item(sku="A")


def test_null_for_param_with_implicit_none_default() -> None:
    @tool
    def f(x: int = None) -> int:  # type: ignore[assignment]
        return x

    assert {"type": "null"} in f.spec.parameters["properties"]["x"]["anyOf"]
    assert f.validate({"x": None}) == {"x": None}


# -- definition errors --------------------------------------------------------------------------


def test_missing_type_hint_is_a_definition_error() -> None:
    def f(a: int, b) -> int:  # type: ignore[no-untyped-def]
        return a

    with pytest.raises(ToolDefinitionError, match=r"parameter 'b' has no type hint") as info:
        tool(f)
    assert "'f'" in str(info.value)


def test_var_args_are_a_definition_error() -> None:
    def f(*items: int) -> int:
        return 0

    def g(a: int, **options: str) -> int:
        return a

    with pytest.raises(ToolDefinitionError, match=r"\*items"):
        tool(f)
    with pytest.raises(ToolDefinitionError, match=r"\*options"):
        tool(g)


@pytest.mark.parametrize("name", ["has space", "dots.not.ok", "x" * 65, "naïve", "a/b", "tab\tname"])
def test_bad_tool_name_is_a_definition_error(name: str) -> None:
    def f(a: int) -> int:
        return a

    with pytest.raises(ToolDefinitionError, match="not allowed"):
        Tool(f, name=name)


def test_lambda_name_is_rejected_and_good_names_accepted() -> None:
    with pytest.raises(ToolDefinitionError, match="<lambda>"):
        tool(lambda: 1)
    assert Tool(lambda: 1, name="x" * 64).name == "x" * 64
    assert Tool(lambda: 1, name="get-weather_2").name == "get-weather_2"


def test_tool_name_with_trailing_newline_is_rejected() -> None:
    with pytest.raises(ToolDefinitionError):
        Tool(lambda: 1, name="lookup\n")


def test_unresolvable_type_hint_is_a_definition_error() -> None:
    def f(a: NoSuchType) -> int:  # type: ignore[name-defined]  # noqa: F821
        return 0

    with pytest.raises(ToolDefinitionError, match="cannot resolve"):
        tool(f)


# -- validation errors --------------------------------------------------------------------------


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        add.validate({"a": "seven", "b": 1})
    message = str(info.value)
    assert message.startswith("a: ")
    assert "valid integer" in message


def test_missing_and_extra_fields_are_named() -> None:
    with pytest.raises(ToolArgumentsError, match=r"b: Field required"):
        add.validate({"a": 1})
    with pytest.raises(ToolArgumentsError, match=r"unknown field\(s\) c; the fields are a, b"):
        add.validate({"a": 1, "b": 2, "c": 3})


def test_several_errors_are_all_reported() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        add.validate({"a": "x", "b": "y"})
    assert "a: " in str(info.value) and "b: " in str(info.value)


def test_nested_error_path_is_dotted() -> None:
    with pytest.raises(ToolArgumentsError, match=r"order\.items\.0\.sku: Field required"):
        place_order.validate({"order": {"items": [{"quantity": 1, "color": None}],
                                        "shipping": {"street": "s", "city": "c", "zip": None},
                                        "billing": None, "priority": None, "note": None},
                              "dry_run": None})


def test_bad_json_and_non_object_arguments() -> None:
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        add.validate('{"a": 1,')
    with pytest.raises(ToolArgumentsError, match="JSON object"):
        add.validate("[1, 2]")
    assert nothing.validate("") == {}


async def test_json_string_arguments_are_parsed() -> None:
    assert await add.call('{"a": 2, "b": 0.5}') == 2.5


def test_tool_arguments_error_is_a_value_error() -> None:
    assert issubclass(ToolArgumentsError, ValueError)


# -- calling ------------------------------------------------------------------------------------


async def test_sync_tool_runs_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    @tool
    def where(x: int) -> int:
        threads.append(threading.current_thread())
        return x * 2

    assert where.is_async is False
    assert await where.call({"x": 21}) == 42
    assert threads and threads[0] is not threading.main_thread()


async def test_async_tool_is_awaited() -> None:
    @tool
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert double.is_async is True
    assert await double.call({"x": 4}) == 8
    assert double.spec.parameters["properties"]["x"] == {"type": "integer"}


def test_decorated_function_stays_directly_callable() -> None:
    assert add(1, 2.5) == 3.5
    assert repr(add) == "<Tool add>"


def test_decorator_with_options() -> None:
    @tool(requires_approval=True, timeout=2.5)
    def delete(path: str) -> str:
        """Delete a file."""
        return path

    assert isinstance(delete, Tool)
    assert delete.requires_approval is True
    assert delete.timeout == 2.5
    assert add.requires_approval is False and add.timeout is None


def test_as_tool_wraps_plain_functions_and_keeps_tools() -> None:
    def plain(a: int) -> int:
        """Plain."""
        return a

    wrapped = as_tool(plain)
    assert isinstance(wrapped, Tool) and wrapped.name == "plain"
    assert as_tool(add) is add


async def test_async_tool_timeout_is_enforced() -> None:
    done: list[bool] = []

    @tool(timeout=0.05)
    async def slow() -> str:
        await asyncio.sleep(5)
        done.append(True)
        return "late"

    start = time.monotonic()
    with pytest.raises((asyncio.TimeoutError, TimeoutError)):
        await slow.call({})
    assert time.monotonic() - start < 2  # far below the 5 s the tool would take
    assert done == []


async def test_sync_tool_timeout_is_enforced() -> None:
    @tool(timeout=0.05)
    def slow_sync() -> str:
        time.sleep(0.3)
        return "late"

    with pytest.raises((asyncio.TimeoutError, TimeoutError)):
        await slow_sync.call({})


async def test_tool_within_its_timeout_returns() -> None:
    @tool(timeout=1.0)
    async def quick() -> str:
        await asyncio.sleep(0.01)
        return "ok"

    assert await quick.call({}) == "ok"


async def test_invalid_arguments_do_not_run_the_function() -> None:
    ran: list[int] = []

    @tool
    def f(a: int) -> int:
        ran.append(a)
        return a

    with pytest.raises(ToolArgumentsError):
        await f.call({"a": "nope"})
    assert ran == []


# -- observations -------------------------------------------------------------------------------


@dataclass
class Point:
    x: int
    y: int


def test_to_observation() -> None:
    assert to_observation("plain") == "plain"
    assert json.loads(to_observation({"a": [1, 2]})) == {"a": [1, 2]}
    assert json.loads(to_observation(Item(sku="A"))) == {"sku": "A", "quantity": 1, "color": "red"}
    assert json.loads(to_observation(Point(1, 2))) == {"x": 1, "y": 2}
    assert to_observation("ünï") == "ünï"
    assert to_observation({"k": "ü"}) == '{"k":"ü"}'  # compact, and not escaped

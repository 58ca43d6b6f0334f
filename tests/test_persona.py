"""Personas: the shipped set, the agents they become, the errors in a file, and where they are found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from agentflow.tools import known
from pydantic import BaseModel

from agentflow import ConfigError, ScriptedModel
from agentflow.agent.persona import Persona, PersonaError, get, load, parse, personas, pick, search_path
from agentflow.models.scripted import call

SHIPPED = {"analyst", "coder", "editor", "planner", "researcher", "tutor", "writer"}
TOOLS = {  # the tools each shipped persona's agent gets, after groups are expanded
    "analyst": {"read_file", "list_files", "find_files", "run_python", "calculator"},
    "coder": {"read_file", "list_files", "find_files", "write_file", "run_python", "shell"},
    "editor": set(),
    "planner": {"now", "days_between", "add_days"},
    "researcher": {"fetch", "read_file", "list_files", "find_files", "calculator", "now", "days_between",
                   "add_days"},
    "tutor": {"calculator"},
    "writer": {"read_file", "list_files", "find_files", "write_file"},
}
NEEDS_APPROVAL = {"run_python", "shell"}


def persona_text(*front: str, body: str = "Be brief.") -> str:
    """A persona file: `front` are the front-matter lines (the first is line 2 of the file)."""
    return "\n".join(["---", *front, "---", body]) + "\n"


BASE = ("name: poet", "role: a poet", "goal: write short verse")


def write(folder: Path, file: str, *front: str, body: str = "Be brief.") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file
    path.write_text(persona_text(*front, body=body), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_persona_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTFLOW_PERSONAS", raising=False)


# -- the shipped set ------------------------------------------------------------------------------

def test_every_shipped_persona_loads_from_the_package() -> None:
    found = personas()
    assert set(found) == SHIPPED
    for name, p in found.items():
        assert isinstance(p, Persona) and p.path is not None and p.path.name == f"{name}.md"
        assert p.role and p.goal and p.backstory and p.instructions
        assert set(p.tools) <= set(known())
    assert search_path()[0] == found["coder"].path.parent  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_each_shipped_persona_becomes_an_agent_with_its_tools(name: str, tmp_path: Path) -> None:
    p = get(name)
    model = ScriptedModel([])
    agent = p.agent(model=model, root=tmp_path)
    assert agent.name == name and agent.model is model
    assert set(agent.tools) == TOOLS[name]
    assert {t for t, tool in agent.tools.items() if tool.requires_approval} == TOOLS[name] & NEEDS_APPROVAL
    assert agent.max_steps == 20  # no max_steps in the shipped files
    # what the supervisor routes by, and what the agent is told
    assert agent.description == p.description == f"{p.role[0].upper()}{p.role[1:]}: {p.goal}"
    for part in (p.role, p.goal, p.backstory, p.instructions):
        assert part in agent.instructions
    assert agent.instructions.startswith(f"You are {name}, {p.role}.")


def test_coder_has_the_file_tools_and_an_approved_shell() -> None:
    agent = get("coder").agent(model=ScriptedModel([]))
    assert list(agent.tools) == ["read_file", "list_files", "find_files", "write_file", "run_python", "shell"]
    assert agent.tools["shell"].requires_approval and agent.tools["run_python"].requires_approval
    assert not agent.tools["write_file"].requires_approval
    assert agent.ends_with == "text"  # an untyped persona answers in text


def test_editor_and_planner_have_typed_outputs() -> None:
    editor = get("editor").output_type()
    assert editor is not None and issubclass(editor, BaseModel) and editor.__name__ == "EditorOutput"
    fields = editor.model_fields
    assert {k: f.annotation for k, f in fields.items()} == {"verdict": str, "score": int, "issues": list[str]}
    assert fields["verdict"].description == "accept or revise" and all(f.is_required() for f in fields.values())

    planner = get("planner").output_type()
    assert planner is not None
    assert {k: f.annotation for k, f in planner.model_fields.items()} == {"steps": list[str], "risks": list[str]}

    agent = get("editor").agent(model=ScriptedModel([]))
    assert agent.ends_with == "finish" and set(agent.output.type.model_fields) == {"verdict", "score", "issues"}
    assert get("tutor").output_type() is None


# -- a persona agent runs ---------------------------------------------------------------------------

async def test_the_editor_agent_returns_its_typed_output_through_finish() -> None:
    model = ScriptedModel([call("finish", verdict="revise", score=4, issues=["'alot' -> 'a lot'"])])
    result = await get("editor").agent(model=model).run("Review: 'I like it alot.'")
    assert result.ok and result.stop_reason == "finish"
    assert type(result.output).__name__ == "EditorOutput"
    assert result.output.model_dump() == {"verdict": "revise", "score": 4, "issues": ["'alot' -> 'a lot'"]}
    request = model.requests[0]
    assert request.tool_names == ["finish"]
    system = request.messages[0]
    assert system.role == "system" and "a demanding editor and critic" in (system.content or "")
    assert request.last.content == "Review: 'I like it alot.'"


async def test_a_bad_finish_is_fed_back_to_the_editor() -> None:
    model = ScriptedModel([call("finish", verdict="accept", score="great"),
                           call("finish", verdict="accept", score=9, issues=[])])
    result = await get("editor").agent(model=model).run("Review this.")
    assert result.ok and result.output.score == 9  # type: ignore[union-attr]
    assert "score" in (model.requests[1].last.content or "")


async def test_the_tutor_agent_uses_the_calculator() -> None:
    model = ScriptedModel([call("calculator", expression="6*7"), "6*7 is 42."])
    result = await get("tutor").agent(model=model).run("What is 6*7?")
    assert result.output == "6*7 is 42."
    assert model.requests[1].last.role == "tool" and model.requests[1].last.content == "42"


# -- parsing ----------------------------------------------------------------------------------------

def test_a_full_persona_file_parses() -> None:
    text = persona_text(*BASE, "backstory: You read Basho.", "tools: calculator", "model: openai:gpt-4o-mini",
                        "max_steps: 5", "output:", "  poem: str", "  lines: int?",
                        "  words:", "    type: list[str]", "    description: the words used",
                        body="Rhyme when you can.\n\nKeep it short.")
    p = parse(text, "poet.md")
    assert (p.name, p.role, p.goal, p.backstory) == ("poet", "a poet", "write short verse", "You read Basho.")
    assert p.tools == ["calculator"]  # one name may be given without a list
    assert p.model == "openai:gpt-4o-mini" and p.max_steps == 5 and p.path == Path("poet.md")
    assert p.instructions == "Rhyme when you can.\n\nKeep it short."
    out = p.output_type()
    assert out is not None
    fields = out.model_fields
    assert fields["poem"].annotation is str and fields["lines"].annotation == int | None
    assert fields["words"].annotation == list[str] and fields["words"].description == "the words used"
    assert p.description == "A poet: write short verse"
    assert p.agent(model=ScriptedModel([])).max_steps == 5
    assert p.agent(model=ScriptedModel([]), max_steps=2).max_steps == 2


@pytest.mark.parametrize(("front", "line", "field", "words"), [
    pytest.param(("name: poet: really", "role: r", "goal: g"), 2, None, "YAML error", id="yaml-first-line"),
    pytest.param(("name: poet", "role: a poet: really", "goal: g"), 3, None, "YAML error", id="yaml-syntax"),
    pytest.param(("name: poet", "role: r", "goal: g", "\tcolour: red"), 5, None, "YAML error", id="yaml-tab"),
    pytest.param((*BASE, "tools: [calculator, laser]"), 5, "tools", "unknown tool 'laser'", id="unknown-tool"),
    pytest.param((*BASE, "backstory: b", "tools:", "  - calculator", "  - laser"), 6, "tools",
                 "unknown tool 'laser'", id="unknown-tool-block-list"),
    pytest.param(("name: poet", "goal: g"), 2, "role", "missing or empty", id="missing-role"),
    pytest.param(("name: poet", "role: '  '", "goal: g"), 3, "role", "missing or empty", id="empty-role"),
    pytest.param((*BASE, "colour: red"), 5, "colour", "unknown field", id="unknown-field"),
    pytest.param(("role: r", "name: my poet", "goal: g"), 3, "name", "'my poet' must be", id="name-with-spaces"),
    pytest.param((*BASE, "output:", "  verdict: str", "  score: decimal"), 7, "output.score",
                 "unknown type 'decimal'", id="bad-output-type"),  # the line of the field itself
    pytest.param((*BASE, "output:", "  score:", "    type: dict"), 6, "output.score", "unknown type 'dict'",
                 id="bad-output-type-long-form"),
    pytest.param(("name: yes", "role: r", "goal: g"), 2, "name", "must be text, not True", id="name-not-text"),
    pytest.param((*BASE, "output: [score]"), 5, "output", "must be a mapping", id="output-not-a-mapping"),
    pytest.param((*BASE, "tools: {calculator: yes}"), 5, "tools", "must be a list", id="tools-a-mapping"),
    pytest.param((*BASE, "tools: 3"), 5, "tools", "must be a list", id="tools-a-number"),
    pytest.param((*BASE, "tools: [calculator, [clock]]"), 5, "tools", "must be a list", id="tools-nested"),
    pytest.param((*BASE, "max_steps: many"), 5, "max_steps", "must be int", id="max-steps-not-int"),
    pytest.param((*BASE, "model: 3"), 5, "model", "must be str", id="model-not-str"),
    pytest.param(("- name: poet",), 2, None, "must be a mapping", id="front-matter-a-list"),
])
def test_errors_name_the_file_the_line_and_the_field(tmp_path: Path, front: tuple[str, ...], line: int,
                                                      field: str | None, words: str) -> None:
    path = tmp_path / "poet.md"
    path.write_text(persona_text(*front), encoding="utf-8")
    with pytest.raises(PersonaError) as info:
        load(path)
    e = info.value
    assert (e.path, e.line, e.field) == (path, line, field)
    assert str(e).startswith(f"{path}:{line}: " + (f"{field}: " if field else ""))
    assert words in str(e)
    assert isinstance(e, ConfigError)


def test_an_unknown_tool_lists_the_known_ones() -> None:
    with pytest.raises(PersonaError) as info:
        parse(persona_text(*BASE, "tools: [laser]"), "p.md")
    assert "known: " + ", ".join(known()) in str(info.value)


def test_an_unknown_field_lists_the_fields() -> None:
    with pytest.raises(PersonaError,
                       match=r"fields are name, role, goal, backstory, tools, mcp, model, output, max_steps"):
        parse(persona_text(*BASE, "colour: red"), "p.md")


def test_every_mistake_of_a_file_is_reported_at_once_with_did_you_mean() -> None:
    text = persona_text("name: poet", "role: a poet", "tols: [calculator]", "tools: [calculater, laser]",
                        "max_steps: many")
    with pytest.raises(PersonaError) as info:
        parse(text, "p.md")
    message = str(info.value)
    assert message.splitlines() == [
        "5 mistakes:",
        "- p.md:4: tols: unknown field (did you mean 'tools'?); fields are name, role, goal, backstory, tools, "
        "mcp, model, output, max_steps",
        "- p.md:2: goal: missing or empty: every persona needs name, role and goal",
        f"- p.md:5: tools: unknown tool 'calculater' (did you mean 'calculator'?); known: {', '.join(known())}",
        f"- p.md:5: tools: unknown tool 'laser'; known: {', '.join(known())}",
        "- p.md:6: max_steps: must be int",
    ]
    assert (info.value.line, info.value.field) == (4, "tols")  # the first one's


def test_a_misspelt_persona_name_is_suggested() -> None:
    with pytest.raises(ConfigError, match=r"there is no persona 'writr' \(did you mean 'writer'\?\); known: "):
        pick(["writr"])
    with pytest.raises(ConfigError, match=r"there is no persona 'reseacher' \(did you mean 'researcher'\?\)"):
        get("reseacher")


@pytest.mark.parametrize(("text", "words"), [
    ("name: poet\nrole: r\ngoal: g\n", "starts with a '---' line"),
    ("", "starts with a '---' line"),
    ("# Poet\n---\nname: poet\n---\n", "starts with a '---' line"),
    ("---\nname: poet\nrole: r\ngoal: g\n", "not closed"),
])
def test_no_front_matter_or_an_unclosed_one_is_reported_at_line_1(text: str, words: str) -> None:
    with pytest.raises(PersonaError) as info:
        parse(text, "dir/poet.md")
    e = info.value
    assert (e.path, e.line, e.field) == (Path("dir/poet.md"), 1, None)
    assert str(e).startswith("dir/poet.md:1: ") and words in str(e)


def test_an_unreadable_file_is_a_persona_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PersonaError) as info:
        load(tmp_path / "gone.md")
    assert info.value.path == tmp_path / "gone.md" and info.value.line is None
    assert str(info.value).startswith(f"{tmp_path / 'gone.md'}: cannot read it")


# -- where personas come from -----------------------------------------------------------------------

def test_a_user_directory_adds_personas_and_replaces_shipped_ones(tmp_path: Path) -> None:
    write(tmp_path, "poet.md", *BASE, "tools: [calculator]")
    write(tmp_path, "my-tutor.md", "name: tutor", "role: a strict tutor", "goal: drill times tables")
    found = personas(dirs=[tmp_path])
    assert set(found) == SHIPPED | {"poet"}
    assert found["poet"].path == tmp_path / "poet.md" and found["poet"].tools == ["calculator"]
    assert found["tutor"].role == "a strict tutor" and found["tutor"].path == tmp_path / "my-tutor.md"
    assert get("tutor", dirs=[tmp_path]).goal == "drill times tables"
    assert get("tutor").role == "a patient math tutor"  # the shipped one is untouched without the directory


def test_readme_and_other_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# My personas\n\nNo front matter here.\n")
    (tmp_path / "notes.txt").write_text("not a persona")
    sub = tmp_path / "readme-case"
    sub.mkdir()
    (sub / "Readme.md").write_text("# also skipped\n")
    assert set(personas(dirs=[tmp_path, sub])) == SHIPPED


def test_the_environment_variable_adds_directories_separated_by_pathsep(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write(a, "poet.md", *BASE)
    write(b, "poet.md", "name: poet", "role: a later poet", "goal: g")
    write(b, "chef.md", "name: chef", "role: a chef", "goal: cook")
    write(c, "poet.md", "name: poet", "role: the last poet", "goal: g")
    monkeypatch.setenv("AGENTFLOW_PERSONAS", f"{a}{os.pathsep}{b}{os.pathsep}")  # an empty entry is ignored
    assert search_path()[1:] == [a, b]
    found = personas()
    assert set(found) == SHIPPED | {"poet", "chef"}
    assert found["poet"].role == "a later poet"  # a later directory wins
    assert search_path([c])[1:] == [a, b, c]
    assert personas(dirs=[c])["poet"].role == "the last poet"  # dirs= come after the variable
    assert get("chef").goal == "cook"


def test_a_missing_directory_is_a_config_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match=f"persona directory {missing} does not exist"):
        personas(dirs=[missing])
    monkeypatch.setenv("AGENTFLOW_PERSONAS", str(missing))
    with pytest.raises(ConfigError, match="nowhere does not exist.*AGENTFLOW_PERSONAS"):
        get("coder")


def test_a_bad_file_in_a_user_directory_names_that_file(tmp_path: Path) -> None:
    write(tmp_path, "good.md", *BASE)
    bad = write(tmp_path, "bad.md", "name: bad", "role: r", "goal: g", "tools: [laser]")
    with pytest.raises(PersonaError) as info:
        personas(dirs=[tmp_path])
    assert info.value.path == bad and info.value.line == 5 and info.value.field == "tools"


def test_get_an_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        get("nope")
    assert "there is no persona 'nope'; known: analyst, coder, editor, planner, researcher, tutor, writer" \
        in str(info.value)
    assert "`name: nope`" in str(info.value) and "AGENTFLOW_PERSONAS" in str(info.value)
    write(tmp_path, "poet.md", *BASE)
    with pytest.raises(ConfigError, match=r"known: .*poet"):
        get("nope", dirs=[tmp_path])


# -- Persona.agent options --------------------------------------------------------------------------

async def test_the_model_argument_overrides_the_files_model() -> None:
    p = parse(persona_text(*BASE, "model: openai:gpt-4o-mini"), "poet.md")
    with pytest.raises(ConfigError, match="openai:gpt-4o-mini"):  # the file's model, which has no key here
        _ = p.agent().model
    model = ScriptedModel(["Autumn moonlight"])
    agent = p.agent(model=model)
    assert agent.model is model
    assert (await agent.run("a haiku")).output == "Autumn moonlight"


async def test_root_confines_the_file_tools(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir()
    model = ScriptedModel([call("write_file", path="../escaped.txt", content="out"),
                           call("write_file", path="/etc/agentflow-test.txt", content="out"),
                           call("write_file", path="notes/in.txt", content="in"),
                           "done"])
    result = await get("writer").agent(model=model, root=root).run("write a file")
    assert result.output == "done"
    assert not (tmp_path / "escaped.txt").exists() and not Path("/etc/agentflow-test.txt").exists()
    assert (root / "notes" / "in.txt").read_text() == "in"
    refused = [model.requests[i].last.content or "" for i in (1, 2)]
    assert all("outside the working directory" in r for r in refused)
    assert "wrote 2 bytes to notes/in.txt" in (model.requests[3].last.content or "")


def test_explicit_tools_replace_the_named_ones() -> None:
    def shout(text: str) -> str:
        """Shout the text."""
        return text.upper()

    agent = get("coder").agent(model=ScriptedModel([]), tools=[shout])
    assert list(agent.tools) == ["shout"]

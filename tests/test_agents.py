import pytest

from claude_force_nb._agents import AgentRegistry, agent_dirs, parse_agent
from claude_force_nb._errors import AgentFileError, AgentNotFoundError, ClaudeForceWarning
from claude_force_nb._models import ALIASES


def write_agent(directory, name, body="You review code.", **meta):
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["---", f"name: {name}"] + [f"{k}: {v}" for k, v in meta.items()] + ["---", body, ""]
    path = directory / f"{name}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_parse_claude_code_style_file():
    agent = parse_agent(
        "---\nname: reviewer\ndescription: Reviews code\nmodel: haiku\ntools: Read, Grep\n"
        "max_tokens: 300\ntemperature: 0.2\n---\nYou are a reviewer.\n\nBe brief.\n",
        source="x.md",
    )
    assert agent.name == "reviewer"
    assert agent.description == "Reviews code"
    assert agent.model == ALIASES["haiku"]
    assert agent.max_tokens == 300
    assert agent.params == {"temperature": 0.2}
    assert agent.system_prompt == "You are a reviewer.\n\nBe brief."
    assert agent.source == "x.md"


def test_full_model_id_and_inherit():
    assert parse_agent("---\nname: a\nmodel: claude-opus-4-6\n---\nHi").model == "claude-opus-4-6"
    assert parse_agent("---\nname: a\nmodel: inherit\n---\nHi").model is None


def test_name_defaults_to_file_stem():
    assert parse_agent("---\ndescription: d\n---\nHi", default_name="stem").name == "stem"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("no front matter\n", "starting with '---'"),
        ("---\nname: a\nbody without end\n", "not closed"),
        ("---\nname: [unclosed\n---\nHi\n", "not valid YAML"),
        ("---\n- a list\n---\nHi\n", "must be a mapping"),
        ("---\ndescription: no name\n---\nHi\n", "needs a 'name'"),
        ("---\nname: a\nmax_tokens: lots\n---\nHi\n", "'max_tokens' must be a whole number, got 'lots'"),
        ("---\nname: a\nmax_tokens: 0\n---\nHi\n", "'max_tokens' must be at least 1, got 0"),
        ("---\nname: a\ntemperature: .nan\n---\nHi\n", "'temperature' must be between 0 and 1, got nan"),
        ("---\nname: a\ntop_p: 1.5\n---\nHi\n", "'top_p' must be between 0 and 1"),
        ("---\nname: a\ntop_k: -1\n---\nHi\n", "'top_k' must be at least 0"),
        ("---\nname: a\nstop_sequences: [1]\n---\nHi\n", "'stop_sequences' must be a list of non-blank strings"),
        ("---\nname: a\nmodel: 3\n---\nHi\n", "'model' must be a string"),
        ("---\nname: a\n---\n\n", "body"),
    ],
)
def test_malformed_front_matter_names_file_and_problem(text, fragment):
    with pytest.raises(AgentFileError, match=fragment) as info:
        parse_agent(text, source="bad.md")
    assert str(info.value).startswith("bad.md:")


def test_builtins_are_present_and_parse():
    registry = AgentRegistry()
    for name in ("code-reviewer", "python-expert", "explainer", "summarizer"):
        agent = registry.get(name)
        assert agent.source == "built-in"
        assert agent.description and agent.system_prompt


def test_nearer_directory_wins(tmp_path):
    home = tmp_path / "home"
    project = tmp_path / "project"
    notebooks = project / "notebooks"
    notebooks.mkdir(parents=True)
    write_agent(home / ".claude" / "agents", "code-reviewer", "From home.")
    write_agent(home / ".claude" / "agents", "home-only", "Home agent.")
    write_agent(project / ".claude" / "agents", "code-reviewer", "From the project.")
    registry = AgentRegistry(cwd=notebooks, user_home=home)
    assert registry.get("code-reviewer").system_prompt == "From the project."
    assert registry.get("home-only").system_prompt == "Home agent."
    assert registry.get("summarizer").source == "built-in"


def test_user_agents_override_builtins(tmp_path):
    write_agent(tmp_path / ".claude" / "agents", "summarizer", "Mine.")
    registry = AgentRegistry(cwd=tmp_path / "elsewhere", user_home=tmp_path)
    assert registry.get("summarizer").system_prompt == "Mine."


def test_agent_dirs_order(tmp_path):
    dirs = agent_dirs(tmp_path / "a" / "b", tmp_path / "home")
    assert dirs[0] == tmp_path / "a" / "b" / ".claude" / "agents"
    assert dirs[-1] == tmp_path / "home" / ".claude" / "agents"


def test_unknown_agent_lists_available_and_closest(tmp_path):
    registry = AgentRegistry(cwd=tmp_path, user_home=tmp_path)
    with pytest.raises(AgentNotFoundError) as info:
        registry.get("code-reviwer")
    message = str(info.value)
    assert "Unknown agent 'code-reviwer'" in message
    assert "Did you mean 'code-reviewer'?" in message
    assert "python-expert" in message
    assert info.value.suggestion == "code-reviewer"


def test_malformed_file_is_skipped_with_a_warning(tmp_path):
    agents = tmp_path / ".claude" / "agents"
    write_agent(agents, "good", "Fine.")
    agents.joinpath("broken.md").write_text("---\nname: [x\n---\nHi\n")
    with pytest.warns(ClaudeForceWarning, match="broken.md"):
        registry = AgentRegistry(cwd=tmp_path, user_home=tmp_path / "home")
    assert registry.get("good").system_prompt == "Fine."
    assert str(agents / "broken.md") in registry.problems


def test_new_file_is_picked_up_on_lookup(tmp_path):
    registry = AgentRegistry(cwd=tmp_path, user_home=tmp_path / "home")
    assert "late" not in registry
    write_agent(tmp_path / ".claude" / "agents", "late", "Arrived later.")
    assert registry.get("late").system_prompt == "Arrived later."


def test_a_skipped_file_is_named_in_the_unknown_agent_error_and_its_warning_points_at_it(isolated_env):
    agents = isolated_env["work"] / ".claude" / "agents"
    path = write_agent(agents, "bad-temp", max_tokens=-5)
    with pytest.warns(ClaudeForceWarning) as caught:
        registry = AgentRegistry()
    [warning] = caught
    assert (warning.filename, warning.lineno) == (str(path), 3)
    assert "'max_tokens' must be at least 1, got -5" in str(warning.message)
    with pytest.raises(AgentNotFoundError) as error:
        registry.get("bad-temp")
    assert f"Skipped files: {path}: 'max_tokens' must be at least 1, got -5." in str(error.value)


def test_claude_code_keys_that_do_not_apply_are_kept_as_ignored():
    agent = parse_agent("---\nname: a\ntools: Read, Grep\ncolor: blue\nmodel: opus\n---\nHi")
    assert agent.ignored == {"tools": "Read, Grep", "color": "blue"}
    assert agent.model == "claude-opus-4-6"


def test_an_unknown_model_in_front_matter_names_the_line():
    with pytest.raises(AgentFileError, match="'model' names no model: Unknown model 'gpt-4o'") as error:
        parse_agent("---\nname: a\nmodel: gpt-4o\n---\nHi", source="x.md")
    assert error.value.line == 3


def test_a_lone_stop_sequence_becomes_a_list():
    agent = parse_agent("---\nname: a\nstop_sequences: END\ntop_k: 5\n---\nHi\n")
    assert agent.params == {"stop_sequences": ["END"], "top_k": 5}

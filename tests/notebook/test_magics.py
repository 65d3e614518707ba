from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from claude_force_nb._notebook.background import BackgroundRun
from claude_force_nb._results import AgentResult
from claude_force_nb._resultset import Results


def calls(server):
    return [r for r in server.log if r.path == "/v1/messages"]


def test_agent_cell_renders_answer_with_footer(ip, server, capsys):
    ip.run_cell_magic("agent", "explainer -o r", "What is a closure?")
    out = capsys.readouterr().out
    result = ip.user_ns["r"]
    assert isinstance(result, AgentResult) and result.success
    assert result.output in out
    assert "explainer · claude-sonnet-4-6" in out and "live" in out
    assert calls(server)[0].body["messages"][0]["content"] == "What is a closure?"


def test_rerun_is_served_from_cache(ip, server, capsys):
    ip.run_cell_magic("agent", "explainer", "same question")
    ip.run_cell_magic("agent", "explainer -o r", "same question")
    assert ip.user_ns["r"].cached
    assert "cached" in capsys.readouterr().out
    assert len(calls(server)) == 1


def test_trailing_semicolon_silences_but_stores(ip, capsys):
    ip.run_cell_magic("agent", "explainer -o r;", "quiet please")
    assert capsys.readouterr().out == ""
    assert ip.user_ns["r"].success


def test_default_agent_and_options_reach_the_request(ip, server):
    ip.run_line_magic("config", "AgentMagics.default_agent = 'summarizer'")
    ip.run_cell_magic("agent", "-m claude-haiku-4-5 --max-tokens 99 -t 0.5 --system 'Be brief.' --no-cache", "text")
    body = calls(server)[0].body
    assert (body["model"], body["max_tokens"], body["temperature"], body["system"]) == (
        "claude-haiku-4-5",
        99,
        0.5,
        "Be brief.",
    )


def test_config_traitlets_apply(ip, server):
    ip.run_line_magic("config", "AgentMagics.model = 'claude-opus-4-6'")
    ip.run_cell_magic("agent", "explainer", "x")
    assert calls(server)[0].body["model"] == "claude-opus-4-6"


def test_interpolation_of_namespace_values(ip, server, capsys):
    ip.user_ns["topic"] = "generators"
    ip.user_ns["cfg"] = {"level": "beginner"}
    ip.run_cell_magic("agent", "explainer", "Explain {topic} for a {cfg['level']}; keep {undefined_name}.")
    content = calls(server)[0].body["messages"][0]["content"]
    assert content == "Explain generators for a beginner; keep {undefined_name}."
    assert "{undefined_name}" in capsys.readouterr().out  # the one-line note


def test_cell_full_of_braces_passes_through(ip, server):
    code = 'def f(d):\n    s = {1, 2}\n    return {"a": d, **d}, f"{d!r:>10}", {k: v for k, v in d.items()}\n'
    ip.run_cell_magic("agent", "code-reviewer", code)
    assert calls(server)[0].body["messages"][0]["content"] == code.strip()


def test_raw_turns_interpolation_off(ip, server):
    ip.user_ns["x"] = 1
    ip.run_cell_magic("agent", "explainer --raw", "{x}")
    assert calls(server)[0].body["messages"][0]["content"] == "{x}"


def displayed(ip, magic, line, cell):
    """The display messages a cell publishes: (mime bundle, whether it updates an earlier one)."""
    with capture_output() as captured:
        ip.run_cell_magic(magic, line, cell)
    return [(output.data, output.update) for output in captured.outputs]


@pytest.mark.parametrize(
    ("fmt", "mimetypes"),
    [
        ("markdown", {"text/markdown", "text/plain"}),
        ("text", {"text/plain"}),
        ("code", {"text/markdown", "text/plain"}),
        ("json", {"text/plain"}),  # the synthetic answer is not JSON
    ],
)
def test_each_format_publishes_its_own_mime_types(ip, server, fmt, mimetypes):
    [(bundle, update)] = displayed(ip, "agent", f"python-expert -f {fmt} -o r", "show code")
    assert set(bundle) == mimetypes and not update
    output = ip.user_ns["r"].output
    if fmt == "code":
        assert bundle["text/markdown"].startswith(f"```\n{output.strip()}\n```")
    if fmt == "json":
        assert "Note: the answer is not JSON, so it is shown as text." in bundle["text/plain"]


def test_stream_updates_the_answer_as_it_arrives(ip, server):
    server.latency = 0.05
    shown = displayed(ip, "agent", "explainer --stream --no-cache -o r", "stream it")
    final = ip.user_ns["r"].output
    (first, first_is_update), *updates = shown
    assert first == {"text/plain": ""} and not first_is_update
    assert all(update for _, update in updates)
    partial = [bundle["text/plain"] for bundle, _ in updates[:-1]]
    assert partial and all(final.startswith(text) and text != final for text in partial)
    assert final in updates[-1][0]["text/markdown"]
    assert calls(server)[0].body["stream"] is True


@pytest.mark.parametrize(
    ("stop_reason", "status", "hint"),
    [
        ("max_tokens", "truncated", "raise --max-tokens"),
        ("refusal", "refused", "declined to answer"),
        ("tool_use", "tool use", "call a tool"),
        ("pause_turn", "paused", "send it again"),
        ("model_context_window_exceeded", "truncated", "shorten the input"),
    ],
)
def test_an_incomplete_answer_is_shown_as_such(ip, server, stop_reason, status, hint):
    server.shape_next(stop_reason=stop_reason)
    [(bundle, _)] = displayed(ip, "agent", "explainer -o r", "x")
    result = ip.user_ns["r"]
    assert (result.success, result.status, result.stop_reason) == (True, status, stop_reason)
    assert f"{status}: " in bundle["text/plain"] and hint in bundle["text/plain"]


def test_an_answer_ended_by_a_stop_sequence_is_complete(ip, server):
    server.shape_next(stop_reason="stop_sequence")
    [(bundle, _)] = displayed(ip, "agent", "explainer -o r", "x")
    result = ip.user_ns["r"]
    assert (result.success, result.status, result.stop_reason, result.complete) == (True, "ok", "stop_sequence", True)
    assert "truncated" not in bundle["text/plain"]


def test_a_sweep_shows_incomplete_answers_in_its_table_frame_and_progress(ip, server):
    ip.user_ns["xs"] = [1, 2, 3]
    server.shape_next(stop_reason="max_tokens")
    ip.run_cell_magic("agents", "explainer --over xs -c 1 -o rs --no-panel;", "n={item}")
    results = ip.user_ns["rs"]
    assert [r.status for r in results] == ["truncated", "ok", "ok"]
    assert list(results.to_dataframe()["stop_reason"]) == ["max_tokens", "end_turn", "end_turn"]
    assert "truncated" in results._repr_mimebundle_()["text/plain"]
    assert ip.magics_manager.registry["AgentMagics"].last_batch.progress.incomplete == 1


@pytest.mark.parametrize(
    ("line", "cell", "fragment"),
    [
        ("nope", "x", "Unknown agent 'nope'"),
        ("explainer --bogus", "x", "unrecognized arguments"),
        ("explainer --max-tokens lots", "x", "invalid int value"),
        ("explainer --max-tokens 0", "x", "--max-tokens must be at least 1"),
        ("explainer --timeout nan", "x", "--timeout must be a positive, finite number, got nan"),
        ("explainer --timeout inf", "x", "--timeout must be a positive, finite number"),
        ("explainer --timeout -1", "x", "--timeout must be a positive"),
        ("explainer -t nan", "x", "between 0 and 1, got nan"),
        ("explainer -o None", "x", "variable name"),
        ("explainer -o class", "x", "variable name"),
        ("explainer -m gpt-4o", "x", "Unknown model 'gpt-4o'"),
        ("explainer -m opsu", "x", "Did you mean 'opus'"),
        ("explainer -t 3", "x", "between 0 and 1"),
        ("explainer --refresh --replay", "x", "at most one"),
        ("explainer -o 1bad", "x", "variable name"),
        ("explainer", "   \n", "cell is empty"),
    ],
)
def test_bad_input_is_a_usage_error(ip, server, line, cell, fragment):
    with pytest.raises(UsageError, match=fragment):
        ip.run_cell_magic("agent", line, cell)
    assert calls(server) == []


def test_api_failure_is_one_line_without_the_key(ip, server, capsys):
    server.faults.push("500")
    server.faults.push("500")
    server.faults.push("500")
    ip.run_cell_magic("agent", "explainer -o r", "fails")
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1
    assert "500" in out and "request id req_" in out
    assert "test-key" not in out
    assert ip.user_ns["r"].error is not None


def test_replay_miss_is_reported(ip, capsys):
    ip.run_cell_magic("agent", "explainer --replay -o r", "not recorded")
    assert "not recorded" in capsys.readouterr().out
    assert not ip.user_ns["r"].success


def test_agents_fan_out_table_and_results_object(ip, server, capsys):
    ip.run_cell_magic("agents", "explainer summarizer -o rs --no-panel", "Explain recursion.")
    results = ip.user_ns["rs"]
    assert isinstance(results, Results) and len(results) == 2
    assert results["summarizer"].agent_name == "summarizer"
    out = capsys.readouterr().out
    assert "explainer" in out and "summarizer" in out and "status" in out
    assert len(calls(server)) == 2


def test_agents_sweep_over_items_and_models(ip, server):
    ip.user_ns["langs"] = ["Python", "Rust"]
    ip.run_cell_magic(
        "agents",
        "explainer --over langs --models claude-haiku-4-5,claude-opus-4-6 -c 2 -o rs --no-panel",
        "Say hello in {item}.",
    )
    results = ip.user_ns["rs"]
    assert len(results) == 4
    assert results["explainer", "Rust", "claude-opus-4-6"].model == "claude-opus-4-6"
    sent = sorted((c.body["model"], c.body["messages"][0]["content"]) for c in calls(server))
    assert sent[0] == ("claude-haiku-4-5", "Say hello in Python.")
    frame = results.to_dataframe()
    assert list(frame["input"]) == ["Python", "Python", "Rust", "Rust"]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("", "at least one agent"),
        ("explainer --over missing_var", "no variable named"),
        ("explainer --over text", "expected a list"),
        ("explainer --over empty", "is empty"),
        ("explainer -c 0", "at least 1"),
        ("explainer -c 1e9", "invalid int value"),
        ("explainer -c 100000", "at most 10,000"),
        ("explainer --models ,,,", "at least one model"),
        ("explainer --models opus,gpt-4o", "Unknown model 'gpt-4o'"),
        ("explainer nope", "Unknown agent"),
        ("explainer --background", "needs -o VAR"),
        ("explainer --over items --raw", "--raw turns off"),
        ("explainer --over items", "never uses {item}"),
    ],
)
def test_agents_bad_input(ip, server, line, fragment):
    ip.user_ns["text"] = "a string"
    ip.user_ns["empty"] = []
    ip.user_ns["items"] = [1, 2]
    cell = "x" if "never uses" in fragment else "x {item}"
    with pytest.raises(UsageError, match=fragment):
        ip.run_cell_magic("agents", line + " --no-panel", cell)
    assert calls(server) == []


def test_background_sweep_can_be_waited_for(ip, server):
    ip.user_ns["items"] = list(range(6))
    ip.run_cell_magic("agents", "explainer --over items --background -o run --no-panel", "n={item}")
    run = ip.user_ns["run"]
    assert isinstance(run, BackgroundRun)
    with pytest.raises(ValueError, match="timeout must be a positive, finite number, got nan"):
        run.wait(float("nan"))
    results = run.wait()
    assert run.done and len(results) == 6 and all(r.success for r in results)
    assert run.progress.finished == 6


def test_agent_list_and_show_keep_their_markdown_intact(ip, isolated_env):
    agents = isolated_env["work"] / ".claude" / "agents"
    agents.mkdir(parents=True)
    (agents / "odd.md").write_text(
        "---\nname: odd\ndescription: a | b <script>x</script>\n---\nPrompt with a fence:\n```py\nx\n```\n"
    )
    listing = ip.run_line_magic("agent", "list")._repr_markdown_()
    [row] = [line for line in listing.splitlines() if "`odd`" in line]
    assert row.count(" | ") == 3 and "a \\| b &lt;script&gt;" in row and "<script>" not in listing
    shown = ip.run_line_magic("agent", "show odd")._repr_markdown_()
    assert "&lt;script&gt;" in shown and shown.rstrip().endswith("```\n````") and "````text\n" in shown


def test_line_subcommands(ip, capsys):
    ip.run_line_magic("agent", "help")
    assert "%agent cache verify" in capsys.readouterr().out
    listing = ip.run_line_magic("agent", "list")
    assert "| `code-reviewer` |" in listing._repr_markdown_()
    assert repr(listing).splitlines()[0].split() == ["agent", "model", "source", "description"]
    shown = ip.run_line_magic("agent", "show summarizer")
    assert "careful summarizer" in shown._repr_markdown_() and "careful summarizer" in repr(shown)
    ip.run_line_magic("config", "AgentMagics.cache_max_rows = 5000")
    ip.run_line_magic("agent", "cache info")
    info = capsys.readouterr().out
    assert "entries:" in info and "bounds: 5,000 answers, 1,024 MiB per file" in info
    ip.run_line_magic("agent", "cache verify")
    assert "verified" in capsys.readouterr().out
    ip.run_line_magic("agent", "config")
    config = capsys.readouterr().out
    assert "default_agent" in config and "test-key" not in config
    with pytest.raises(UsageError, match="--yes"):
        ip.run_line_magic("agent", "cache clear")
    with pytest.raises(UsageError, match="Unknown subcommand"):
        ip.run_line_magic("agent", "frobnicate")


def test_unload_removes_the_magics(ip):
    ip.run_line_magic("unload_ext", "claude_force_nb")
    assert "agent" not in ip.magics_manager.magics["cell"]
    assert "agents" not in ip.magics_manager.magics["cell"]
    ip.run_line_magic("load_ext", "claude_force_nb")
    assert "agent" in ip.magics_manager.magics["cell"]


def test_help_comes_from_the_docstring(ip):
    magic = ip.find_cell_magic("agents")
    assert "--over VAR" in magic.__doc__ and "Send the cell to several agents" in magic.__doc__
    assert magic.__doc__.split()[1] == "%%agents"
    assert ip.find_cell_magic("agent").__doc__.split()[1] == "%%agent"


def test_config_says_which_credential_is_in_use(ip, server, monkeypatch, capsys):
    ip.run_line_magic("unload_ext", "claude_force_nb")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "gateway-token")
    ip.run_line_magic("load_ext", "claude_force_nb")
    ip.run_line_magic("agent", "config")
    out = capsys.readouterr().out
    assert f"API = {server.url} with auth token (ANTHROPIC_AUTH_TOKEN)" in out and "gateway-token" not in out


def test_sweep_over_a_dataframe_uses_its_rows(ip, server):
    pandas = pytest.importorskip("pandas")
    ip.user_ns["df"] = pandas.DataFrame({"title": ["A", "B"], "year": [1999, 2004]})
    ip.run_cell_magic("agents", "explainer --over df -o rs --no-panel", "{item.title} ({item.year})")
    sent = sorted(c.body["messages"][0]["content"] for c in calls(server))
    assert sent == ["A (1999)", "B (2004)"]


def test_a_bad_setting_is_a_one_line_usage_error(ip, monkeypatch):
    ip.run_line_magic("unload_ext", "claude_force_nb")
    monkeypatch.setenv("CLAUDE_FORCE_NB_CACHE_MODE", "replay-only")
    ip.run_line_magic("load_ext", "claude_force_nb")
    with pytest.raises(UsageError, match="Cannot start: CLAUDE_FORCE_NB_CACHE_MODE='replay-only'"):
        ip.run_cell_magic("agent", "explainer", "x")
    with pytest.raises(UsageError, match="No closing quotation"):
        ip.run_line_magic("agent", "show 'oops")


def test_edited_agent_file_applies_to_the_next_cell(ip, server):
    import os
    import time

    agents = Path.cwd() / ".claude" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    path = agents / "mine.md"
    path.write_text("---\nname: mine\n---\nVersion one.\n")
    ip.run_cell_magic("agent", "mine --no-cache", "x")
    path.write_text("---\nname: mine\n---\nVersion two.\n")
    later = time.time() + 5
    os.utime(path, (later, later))  # a coarse file clock must still see the change
    ip.run_cell_magic("agent", "mine --no-cache", "x")
    assert [c.body["system"] for c in calls(server)] == ["Version one.", "Version two."]


def test_a_settings_change_lets_a_background_sweep_finish(ip, server):
    server.latency = 0.05
    ip.user_ns["items"] = list(range(6))
    ip.run_cell_magic("agents", "explainer --over items -c 2 --background -o run --no-panel", "n={item}")
    ip.run_line_magic("config", "AgentMagics.timeout = 30.0")
    results = ip.user_ns["run"].wait()
    assert all(r.success for r in results)


def test_a_missed_cell_resolves_builds_and_keys_its_request_once(ip, server, counted):
    ip.run_cell_magic("agent", "explainer -o r;", "a question never asked")
    assert not ip.user_ns["r"].cached
    assert counted == {"agent": 1, "request": 1, "fingerprint": 1, "lookup": 1}
    assert len(calls(server)) == 1


def test_a_missed_sweep_resolves_builds_and_keys_each_request_once(ip, server, counted):
    ip.user_ns["items"] = [1, 2, 3]
    ip.run_cell_magic("agents", "explainer summarizer --over items -o rs --no-panel;", "Item {item}")
    assert all(r.success and not r.cached for r in ip.user_ns["rs"])
    assert counted == {"agent": 6, "request": 6, "fingerprint": 6, "lookup": 6}
    assert len(calls(server)) == 6


def test_model_aliases_on_the_magic_line_become_api_ids(ip, server):
    ip.run_cell_magic("agent", "explainer -m opus --no-cache", "x")
    ip.user_ns["xs"] = [1]
    ip.run_cell_magic("agents", "explainer --over xs --models haiku,sonnet-4.6 --no-cache --no-panel", "{item}")
    sent = [c.body["model"] for c in calls(server)]
    # The sweep's two calls run concurrently: they may reach the server in either order.
    assert sent[0] == "claude-opus-4-6" and sorted(sent[1:]) == ["claude-haiku-4-5", "claude-sonnet-4-6"]


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("max_concurrent = 0", "AgentMagics.max_concurrent must be at least 1, got 0."),
        ("timeout = float('nan')", "AgentMagics.timeout must be a positive, finite number, got nan."),
        ("cache_ttl_hours = -1", "AgentMagics.cache_ttl_hours must be a positive number"),
        ("default_agent = 'nope'", "AgentMagics.default_agent: Unknown agent 'nope'"),
        ("model = 'gpt-4o'", "AgentMagics.model: Unknown model 'gpt-4o'"),
    ],
)
def test_a_bad_setting_is_refused_when_set_and_the_old_one_kept(ip, server, caplog, setting, fragment):
    magics = ip.magics_manager.registry["AgentMagics"]
    name = setting.split(" = ")[0]
    before = getattr(magics, name)
    ip.run_line_magic("config", f"AgentMagics.{setting}")
    assert fragment in caplog.text
    assert getattr(magics, name) == before
    ip.run_cell_magic("agent", "explainer -o r;", "still works")
    ip.run_line_magic("agent", "cache info")
    assert ip.user_ns["r"].success


def test_out_names_a_builtin_with_a_note(ip, capsys):
    ip.run_cell_magic("agent", "explainer -o print;", "x")
    assert "hides Python's built-in print in this notebook" in capsys.readouterr().out
    del ip.user_ns["print"]


@pytest.mark.parametrize("name", ["__builtins__", "_oh", "_", "__", "_i3", "_12", "Out", "get_ipython", "__name__"])
def test_out_refuses_the_names_ipython_keeps(ip, name):
    kept = ip.user_ns.get(name)
    with pytest.raises(UsageError, match=f"-o/--out cannot use {name}: IPython keeps that name"):
        ip.run_cell_magic("agent", f"explainer -o {name};", "x")
    assert ip.user_ns.get(name) is kept


def test_a_usage_error_repeating_a_lone_surrogate_is_escaped(ip):
    with pytest.raises(UsageError) as caught:
        ip.run_cell_magic("agent", "explainer --bogus \ud83d", "x")
    assert "\\ud83d" in str(caught.value)
    str(caught.value).encode("utf-8")


def test_an_item_with_a_lone_surrogate_displays_escaped(ip, server):
    ip.user_ns["words"] = ["\ud83d", "fine"]
    ip.run_cell_magic("agents", "explainer --over words --no-panel -o rs;", "Say {item}")
    bundle = ip.user_ns["rs"]._repr_mimebundle_()
    assert "\\ud83d" in bundle["text/plain"]
    for text in bundle.values():
        text.encode("utf-8")


def test_format_applies_to_a_sweeps_answers(ip, server):
    ip.run_cell_magic("agents", "explainer summarizer -f json -o rs --no-panel;", "x")
    assert ip.user_ns["rs"].format == "json"
    assert "(not JSON) [synthetic]" in ip.user_ns["rs"]._repr_mimebundle_()["text/html"]


def test_a_data_frame_goes_whole_and_rows_as_label_value_lines(ip, server, capsys):
    pandas = pytest.importorskip("pandas")
    ip.user_ns["df"] = pandas.DataFrame({"name": [f"n{i}" for i in range(100)], "val": range(100)})
    ip.run_cell_magic("agent", "explainer --no-cache", "Summarize:\n{df}")
    content = calls(server)[0].body["messages"][0]["content"]
    assert content.endswith("n98,98\nn99,99") and ".." not in content
    ip.user_ns["small"] = ip.user_ns["df"].head(2)
    ip.run_cell_magic("agents", "explainer --over small --no-cache --no-panel;", "Row:\n{item}")
    sent = sorted(c.body["messages"][0]["content"] for c in calls(server)[1:])
    assert sent == ["Row:\nname: n0\nval: 0", "Row:\nname: n1\nval: 1"]
    ip.run_line_magic("config", "AgentMagics.data_limit = 200")
    ip.run_cell_magic("agent", "explainer --no-cache", "{df}")
    assert "{df}: sent the first" in capsys.readouterr().out
    assert len(calls(server)[-1].body["messages"][0]["content"]) <= 200


def test_an_object_without_a_text_form_is_not_sent_as_its_repr(ip, server, capsys):
    ip.user_ns["thing"] = object()
    ip.run_cell_magic("agent", "explainer --no-cache", "Look at {thing}")
    assert calls(server)[0].body["messages"][0]["content"] == "Look at {thing}"
    assert "{thing} (object) has no text form" in capsys.readouterr().out


def test_a_lone_surrogate_in_a_cell_is_a_one_line_failure(ip, server, capsys):
    ip.user_ns["s"] = "\ud800"
    ip.run_cell_magic("agent", "explainer -o r", "broken {s}")
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "explainer failed" in out and "surrogates not allowed" in out
    assert isinstance(ip.user_ns["r"].error, UnicodeEncodeError)


def test_a_dry_run_shows_the_estimate_and_sends_nothing(ip, server, capsys):
    ip.user_ns["topics"] = ["a", "b", "c"]
    ip.run_cell_magic("agents", "explainer summarizer --over topics --dry-run -o plan", "Explain {item}")
    out = capsys.readouterr().out
    assert "Dry run: nothing was sent." in out and "calls: 6; answered by the cache: 0; to send: 6" in out
    assert "estimated cost: $" in out
    assert calls(server) == [] and len([r for r in server.log if r.path.endswith("/count_tokens")]) == 6
    assert ip.user_ns["plan"].to_send == 6


def test_a_budget_below_the_estimate_is_refused_in_one_line(ip, server):
    with pytest.raises(UsageError, match=r"Not started: estimated \$.* exceeds the \$0\.00 budget"):
        ip.run_cell_magic("agents", "explainer summarizer --budget 0.0001 --no-panel", "x")
    assert calls(server) == []
    for bad in ("0", "nan", "-1", "inf"):
        with pytest.raises(UsageError, match="--budget must be a positive, finite number of dollars"):
            ip.run_cell_magic("agents", f"explainer --budget {bad}", "x")


def test_a_sweep_within_its_budget_runs_and_the_panel_shows_the_spend(ip, server):
    ip.run_cell_magic("agents", "explainer summarizer --budget 5 -o rs", "x")
    assert all(r.success for r in ip.user_ns["rs"])
    magics = ip.magics_manager.registry["AgentMagics"]
    panel = ip.run_line_magic("agent", "stats")
    text = panel._repr_mimebundle_()["text/plain"]
    spent = magics.orchestrator.spent()
    assert spent.calls == 2 and f"Spent: ${spent.cost:.4f} (2 calls" in text
    assert "budget $5.00, $" in text


@pytest.fixture
def quick_batches(server):
    server.batch_seconds = 0.2
    yield server
    server.batch_seconds = 2.0


def test_a_batch_sweep_runs_through_message_batches_and_re_runs_from_the_cache(ip, quick_batches, capsys):
    server = quick_batches
    ip.run_line_magic("config", "AgentMagics.batch_poll_seconds = 0.05")
    ip.user_ns["topics"] = ["a", "b", "c"]
    ip.run_cell_magic("agents", "explainer --over topics --batch -o rs", "Explain {item}")
    assert [r.status for r in ip.user_ns["rs"]] == ["ok"] * 3
    assert calls(server) == [] and len([r for r in server.log if r.path == "/v1/messages/batches"]) == 1
    assert "Message Batches: 1 (1 ended): 0 processing, 3 succeeded" in capsys.readouterr().out
    ip.run_cell_magic("agents", "explainer --over topics --batch -o again --no-panel", "Explain {item}")
    assert all(r.cached for r in ip.user_ns["again"])
    listing = ip.run_line_magic("agent", "batches")
    assert "msgbatch_" in repr(listing) and "collected" in repr(listing)


def test_batch_and_concurrency_do_not_go_together(ip, server):
    with pytest.raises(UsageError, match="-c sets calls in flight, and --batch sends none one by one"):
        ip.run_cell_magic("agents", "explainer --batch -c 5", "x")


def test_agent_batches_cancel_needs_an_id_and_says_what_the_api_said(ip, quick_batches, capsys):
    with pytest.raises(UsageError, match="Usage: %agent batches cancel BATCH_ID"):
        ip.run_line_magic("agent", "batches cancel")
    with pytest.raises(UsageError, match=r"Could not cancel msgbatch_nope: .*404"):
        ip.run_line_magic("agent", "batches cancel msgbatch_nope")
    ip.run_line_magic("agent", "batches")
    assert "No Message Batches written down in" in capsys.readouterr().out


def test_a_batch_dry_run_prices_at_the_batch_rate(ip, server, capsys):
    ip.run_cell_magic("agents", "explainer summarizer --dry-run -o plain", "x")
    ip.run_cell_magic("agents", "explainer summarizer --dry-run --batch -o half", "x")
    assert ip.user_ns["half"].cost == pytest.approx(ip.user_ns["plain"].cost / 2)
    assert "at the Message Batches price" in capsys.readouterr().out


def sent_messages(server):
    return [r.body["messages"] for r in calls(server)]


def test_continue_adds_a_turn_to_the_last_conversation_with_the_agent(ip, server):
    ip.run_cell_magic("agent", "explainer -o first;", "What is a monad?")
    ip.run_cell_magic("agent", "explainer --continue -o second;", "Show one.")
    assert [m["role"] for m in sent_messages(server)[-1]] == ["user", "assistant", "user"]
    assert sent_messages(server)[-1][1]["content"] == ip.user_ns["first"].output
    ip.run_cell_magic("agent", "explainer --continue -o second;", "Show one.")  # the same cell again: rewound
    assert [m["role"] for m in sent_messages(server)[-1]] == ["user", "assistant", "user"]
    magics = ip.magics_manager.registry["AgentMagics"]
    assert len(magics.threads.latest["explainer"]) == 2


def test_threads_by_name_history_and_reset(ip, server, capsys):
    ip.run_cell_magic("agent", "explainer --thread study;", "What is a monad?")
    ip.run_cell_magic("agent", "summarizer --thread study;", "Sum it up.")
    assert len(sent_messages(server)[-1]) == 3
    history = ip.run_line_magic("agent", "history study")
    assert "1. You: What is a monad?" in repr(history) and "2. You: Sum it up." in repr(history)
    assert "**2. You:** Sum it up." in history._repr_markdown_()
    listing = ip.run_line_magic("agent", "history")
    assert "thread: study (2 turns)" in repr(listing)
    ip.run_line_magic("agent", "reset study")
    assert "Forgot 1 conversation." in capsys.readouterr().out
    with pytest.raises(UsageError, match="No thread or agent conversation named 'study'"):
        ip.run_line_magic("agent", "history study")


def test_continue_needs_an_earlier_conversation_and_not_a_thread_too(ip, server):
    with pytest.raises(UsageError, match="No conversation with code-reviewer in this kernel to continue"):
        ip.run_cell_magic("agent", "code-reviewer --continue", "x")
    with pytest.raises(UsageError, match="--continue and --thread both pick a conversation"):
        ip.run_cell_magic("agent", "explainer --continue --thread t", "x")
    assert calls(server) == []


def test_thinking_and_effort_reach_the_request(ip, server):
    ip.run_cell_magic("agent", "explainer -m claude-opus-4-6 --thinking --effort low -o r;", "Why?")
    body = calls(server)[-1].body
    assert body["thinking"] == {"type": "adaptive"} and body["output_config"] == {"effort": "low"}
    assert ip.user_ns["r"].thinking
    with pytest.raises(UsageError, match="argument --effort: invalid choice"):
        ip.run_cell_magic("agent", "explainer --effort extreme", "x")


def test_next_cell_puts_the_answers_code_below(ip, server, monkeypatch):
    placed = []
    monkeypatch.setattr(ip, "set_next_input", lambda text, replace=False: placed.append((text, replace)))
    ip.run_cell_magic("agent", "explainer --next-cell -o r;", "Write a function.")
    assert placed == [(ip.user_ns["r"].output.strip(), False)]  # no fenced block: the whole answer


def test_agent_error_explains_the_last_failed_cell(ip, server):
    ip.run_cell("values = [1, 2]\nvalues[5]")
    answer = ip.run_line_magic("agent", "error")
    task = calls(server)[-1].body["messages"][0]["content"]
    assert "values[5]" in task and "IndexError: list index out of range" in task
    assert "interactiveshell.py" not in task  # IPython's own frames are left out
    assert calls(server)[-1].body["system"].startswith("You help a data scientist whose notebook cell just failed")
    assert answer.result.success
    ip.run_cell_magic("agent", "explainer -o again;", "Why did this fail?\n{Err[-1]}")
    assert "IndexError" in calls(server)[-1].body["messages"][0]["content"]


def test_agent_error_without_an_error_says_so(ip, server):
    magics = ip.magics_manager.registry["AgentMagics"]
    magics.errors = type(magics.errors)()
    with pytest.raises(UsageError, match="No cell has failed in this session yet"):
        ip.run_line_magic("agent", "error")


def test_schema_from_the_namespace_shapes_the_answer(ip, server):
    pydantic = pytest.importorskip("pydantic")

    class Review(pydantic.BaseModel):
        verdict: str
        score: int

    ip.user_ns.update(Review=Review, snippets=["x = 1", "y = 2"])
    ip.run_cell_magic("agent", "code-reviewer --schema Review -o r;", "x = 1")
    assert isinstance(ip.user_ns["r"].parsed, Review)
    ip.run_cell_magic("agents", "code-reviewer --over snippets --schema Review --no-panel -o rs;", "{item}")
    assert {"verdict", "score"} <= set(ip.user_ns["rs"].to_dataframe().columns)
    with pytest.raises(UsageError, match="--schema Nope: no variable named 'Nope'"):
        ip.run_cell_magic("agent", "code-reviewer --schema Nope", "x")
    ip.user_ns["n"] = 3
    with pytest.raises(UsageError, match="--schema n: expected a pydantic model class or a JSON-schema dict, got int"):
        ip.run_cell_magic("agent", "code-reviewer --schema n", "x")


def test_tools_from_the_namespace_are_called_and_shown(ip, server, capsys):
    def area(width: float, height: float) -> float:
        """The area of a rectangle."""
        return width * height

    ip.user_ns.update(area=area, n=3)
    ip.run_cell_magic("agent", "explainer --tools area --max-turns 4 -o r", "How big is a 3 by 4 room?")
    assert ip.user_ns["r"].tool_runs[0]["name"] == "area"
    assert "[tool] area(width=" in capsys.readouterr().out
    with pytest.raises(UsageError, match="--tools n: int is not callable"):
        ip.run_cell_magic("agent", "explainer --tools n", "x")
    with pytest.raises(UsageError, match="--tools nope: no function named 'nope'"):
        ip.run_cell_magic("agent", "explainer --tools area,nope", "x")
    with pytest.raises(UsageError, match="--max-turns must be at least 1"):
        ip.run_cell_magic("agent", "explainer --tools area --max-turns 0", "x")


def test_resetting_a_thread_forgets_it_as_the_agents_latest_too(ip, server):
    ip.run_cell_magic("agent", "explainer --thread study;", "What is a monad?")
    ip.run_line_magic("agent", "reset study")
    with pytest.raises(UsageError, match="No conversation with explainer in this kernel to continue"):
        ip.run_cell_magic("agent", "explainer --continue", "Go on.")


def test_a_cell_asked_again_says_which_turns_it_drops(ip, server, capsys):
    ip.run_cell_magic("agent", "explainer --thread t;", "What is a monad?")
    ip.run_cell_magic("agent", "explainer --thread t;", "Go on.")
    capsys.readouterr()
    ip.run_cell_magic("agent", "explainer --thread t;", "What is a monad?")
    assert "the 1 turn after it leave the conversation" in capsys.readouterr().out


def test_a_configured_cache_path_under_the_home_directory_is_expanded(ip, server, isolated_env):
    ip.run_line_magic("config", "AgentMagics.cache_path = '~/answers.sqlite'")
    ip.run_cell_magic("agent", "explainer -o r", "x")
    ip.run_line_magic("agent", "cache info")
    assert ip.user_ns["r"].success
    assert (isolated_env["user-home"] / "answers.sqlite").exists()
    assert not (isolated_env["work"] / "~").exists()

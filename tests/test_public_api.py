import claude_force_nb
from claude_force_nb import _config, _errors
from claude_force_nb._models import record_of

EXPECTED = {
    "DEFAULT_MODEL",
    "Agent",
    "AgentError",
    "AgentFileError",
    "AgentNotFoundError",
    "AgentRegistry",
    "AgentResult",
    "AsyncAgentOrchestrator",
    "Batch",
    "BudgetExceededError",
    "CacheError",
    "CacheFileError",
    "CacheIntegrityWarning",
    "CacheMissError",
    "CacheStats",
    "Call",
    "CallError",
    "CallOptions",
    "CallTimeoutError",
    "Check",
    "ClaudeForceError",
    "ClaudeForceWarning",
    "Conversation",
    "Grade",
    "ModelNotFoundError",
    "Price",
    "Progress",
    "QualityGateError",
    "ResponseCache",
    "Results",
    "SchemaError",
    "Score",
    "load_ipython_extension",
    "unload_ipython_extension",
}


def test_exported_names_are_exactly_the_intended_ones():
    assert set(claude_force_nb.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(claude_force_nb, name)


def test_every_error_and_warning_is_exported_and_drawn_in_the_tree():
    tree = _errors.__doc__
    for name, value in vars(_errors).items():
        if isinstance(value, type) and issubclass(value, (Exception, Warning)) and value.__module__ == _errors.__name__:
            assert name in claude_force_nb.__all__, name
            assert f" {name} " in tree or f"{name}\n" in tree or f"{name} (" in tree, name


def test_default_model_is_in_the_table_and_not_deprecated():
    record = record_of(claude_force_nb.DEFAULT_MODEL)
    assert record is not None and record.retires is None


def test_only_the_config_module_reads_the_environment():
    import pathlib

    package = pathlib.Path(claude_force_nb.__file__).parent
    readers = sorted(
        p.name for p in package.rglob("*.py") if "os.environ" in p.read_text() or "os.getenv" in p.read_text()
    )
    assert readers == [pathlib.Path(_config.__file__).name]

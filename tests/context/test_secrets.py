"""What looks like a secret: the published key formats, names that say so, and this process's own."""

import pytest

from claude_force_nb._context.secrets import redact, secret_name, secret_value

KEYS = {
    "an Anthropic API key": "sk-ant-api03-" + "aB3_-" * 18,
    "an OpenAI API key": "sk-proj-" + "Xy9_" * 20,
    "an AWS access key id": "AKIAIOSFODNN7EXAMPLE",
    "a GitHub token": "ghp_" + "a1B2" * 9,
    "a Google API key": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "a Slack token": "xoxb-123456789012-abcdefABCDEF",
    "a Hugging Face token": "hf_" + "AbCd" * 9,
    "a Stripe key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "a private key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "a JSON web token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}


@pytest.mark.parametrize("kind", KEYS)
def test_every_key_format_is_redacted_wherever_it_appears(kind):
    text = f"config = {{'key': '{KEYS[kind]}'}}  # set last week"
    assert redact(text) == f"config = {{'key': '[redacted: {kind}]'}}  # set last week"
    assert secret_value(KEYS[kind]) and secret_value(KEYS[kind].encode())


@pytest.mark.parametrize(
    "text",
    [
        "the risk-averse option",
        "sk-learn-based-classifier-pipeline",
        "a task-ant-api03-aaaaaaaaaaaaaaaaaaaa",
        "AKIA is not a key on its own",
        "hf_hub_download(repo_id='gpt2')",
        "eyJ is how base64 JSON starts",
        "df.describe() shows 1,000 rows",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text and not secret_value(text)


def test_a_name_hides_text_only_when_a_whole_word_of_it_says_secret():
    for name in ("OPENAI_API_KEY", "hf_token", "db_password", "apiKey", "client_secret", "aws_credentials"):
        assert secret_name(name, "value"), name
    for name in ("tokenizer_name", "tokens_per_call", "passage", "keys", "secretary"):
        assert not secret_name(name, "value"), name
    assert not secret_name("api_key", 12345)  # a number under a secret's name is no secret


def test_this_process_secrets_from_its_environment_are_redacted(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "correct-horse-battery")
    monkeypatch.setenv("EDITOR", "vim-editor-of-choice")
    assert redact("dsn uses correct-horse-battery") == "dsn uses [redacted: a secret from the environment]"
    assert redact("vim-editor-of-choice") == "vim-editor-of-choice"

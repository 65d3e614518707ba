import subprocess
import sys


def test_the_command_line_help_reads_as_plain_text():
    out = subprocess.run(
        [sys.executable, "-m", "claude_force_nb", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "``" not in out.stdout and "quickstart runs the first tutorial" in out.stdout

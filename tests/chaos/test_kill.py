"""Kill anywhere, CI size: at least 10 SIGKILLs of the tiny three-generation CLI run, each
resumed by the same command; the end matches an uninterrupted run bit for bit.

The full version: `python -m tests.chaos.kill_driver --full` (at least 100 kills).
"""

from tests.chaos import kill_driver

CI_KILLS = 10


def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path):
    report = kill_driver.chaos(CI_KILLS, seed=0, base=tmp_path, keep=True)
    print(f"\nkills survived / kills tried: {report['kills_survived']} / "
          f"{report['kills_tried']}; {report}")
    assert not report["failures"], "\n\n".join(report["failures"])
    assert report["kills_tried"] >= CI_KILLS
    assert report["kills_survived"] == report["kills_tried"]

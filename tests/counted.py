"""Counted PASS/FAIL lines for the suites that are scripts of their own
(tests/e2e, tests/package): each check prints one line, and the run ends
with the plain "N passed, N failed"."""


class Counted:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, why=""):
        if ok:
            self.passed += 1
            print(f"PASS: {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL: {name} ({why})", flush=True)
        return ok

    def note(self, text):
        print(f"      {text}", flush=True)

    def summary(self):
        return f"{self.passed} passed, {self.failed} failed"

    def finish(self):
        """Prints the closing line; returns the exit status."""
        print(self.summary(), flush=True)
        return 0 if self.failed == 0 else 1

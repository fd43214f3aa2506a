"""What the test modules share (strategies, properties, mutants, synthetic files and timings), in
one importable place: pytest puts `tests/` on `sys.path`, so tests import `helpers.<module>`; no
test module imports another."""

"""`pytest bench` runs dotbias's benchmark plugin (options, hooks, the session: see its docstring)."""
pytest_plugins = ["dotbias.pytest_bench.plugin"]

"""One package per command: its config, its run and its summary. Commands use the library (filters, sources, tasks,
format, download, ledger, mixture, train, inspect, bench) and core; the library never imports a command."""
